// Headless Chromium for the page tests (Debian's chromium driven by npm's playwright-core),
// with WebGPU on SwiftShader, and what every page is watched for: console errors, failed
// requests, Content-Security-Policy violations, long main-thread tasks and layout shifts.

import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..', '..');
export const distDir = resolve(process.env.DIST_DIR ?? join(repoRoot, 'dist'));
export const fixturesDir = join(repoRoot, 'tests', 'fixtures');
export const tinyModelDir = join(fixturesDir, 'tiny-sd2');

// Only --enable-unsafe-webgpu is needed for WebGPU on SwiftShader in headless Chromium (without
// it requestAdapter() returns null). Playwright itself adds --no-sandbox, --no-first-run,
// --disable-background-networking, --disable-component-update and --disable-sync.
const WEBGPU_ARGS = ['--enable-unsafe-webgpu'];

export const VIEWPORTS = {
  laptop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
};

/** Starts Chromium, with WebGPU unless `webgpu` is false. */
export function launch({ webgpu = true } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: webgpu ? WEBGPU_ARGS : [],
  });
}

// Runs in the page before any of its scripts (outside its CSP): records what the tests check.
function instrument() {
  const watch = { longTasks: [], layoutShifts: [], cspViolations: [] };
  window.__watch = watch;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) watch.longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.hadRecentInput) continue;
        const nodes = (e.sources ?? []).map((s) => {
          const n = s.node;
          return n ? `${n.nodeName.toLowerCase()}${n.id ? '#' + n.id : ''}${n.className && typeof n.className === 'string' ? '.' + n.className.split(' ').join('.') : ''}` : '?';
        });
        watch.layoutShifts.push({ start: e.startTime, value: e.value, nodes });
      }
    }).observe({ type: 'layout-shift', buffered: true });
  } catch (e) {
    watch.observerError = String(e);
  }
  // Every GPU device the page is given, so that a test can take one away (`loseGpuDevice`).
  if (globalThis.GPUAdapter) {
    const requestDevice = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await requestDevice.apply(this, args);
      (window.__gpuDevices ??= []).push(device);
      return device;
    };
  }
  document.addEventListener('securitypolicyviolation', (e) => {
    watch.cspViolations.push(`${e.violatedDirective}: ${e.blockedURI || '(inline)'} ${e.sourceFile}:${e.lineNumber}`);
  });
}

/**
 * A fresh context (an empty profile) and a page in it, watched. `log` collects console errors,
 * uncaught exceptions, failed requests and HTTP errors, for failure messages.
 */
export async function openPage(browser, { viewport = VIEWPORTS.laptop } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.addInitScript(instrument);
  const log = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') log.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => log.push(`uncaught: ${err.message}`));
  page.on('requestfailed', (req) => log.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('response', (res) => {
    if (res.status() >= 400) log.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  const describe = () => (log.length ? `\npage log:\n  ${log.join('\n  ')}` : '\n(page log empty)');
  return { context, page, log, describe };
}

/** Loads the app and waits until it has started (or failed to). */
export async function openApp(page, url, describe = () => '') {
  await page.goto(url);
  await page
    .waitForFunction(() => ['ready', 'crashed'].includes(document.documentElement.dataset.app) || document.querySelector('#boot-status[data-state="error"]'), null, { timeout: 60_000 })
    .catch((e) => {
      throw new Error(`the app did not start: ${e.message}${describe()}`);
    });
  const state = await page.evaluate(() => document.documentElement.dataset.app);
  if (state !== 'ready') {
    const status = await page.locator('#boot-status, #fatal-error').allTextContents();
    throw new Error(`the app did not start (${state}): ${status.join(' | ')}${describe()}`);
  }
}

/**
 * Destroys the GPU device the page asked for last: to the page this is a lost device, as after
 * a driver reset (`GPUDevice.lost` resolves, and the device computes nothing more).
 */
export function loseGpuDevice(page) {
  return page.evaluate(() => window.__gpuDevices.at(-1).destroy());
}

/** What the instrumentation recorded so far. */
export function watched(page) {
  return page.evaluate(() => window.__watch);
}

let artifacts;
/** The folder for screenshots (SCREENSHOT_DIR, or a new temporary one), printed once. */
export async function artifactsDir() {
  if (!artifacts) {
    artifacts = process.env.SCREENSHOT_DIR ? resolve(process.env.SCREENSHOT_DIR) : await mkdtemp(join(tmpdir(), 'sow-page-'));
    await mkdir(artifacts, { recursive: true });
    console.log(`screenshots and other artifacts: ${artifacts}`);
  }
  return artifacts;
}

/** Saves a full-page screenshot as `<name>.png` in the artifacts folder; returns its path. */
export async function screenshot(page, name) {
  const path = join(await artifactsDir(), `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * The interactive controls (buttons, fields, tabs, ...) that Chromium's accessibility tree
 * gives no name, as "role (html id)" strings: every control must have a label or a name.
 */
export async function unnamedControls(page) {
  const cdp = await page.context().newCDPSession(page);
  const { nodes } = await cdp.send('Accessibility.getFullAXTree');
  const controls = new Set(['button', 'textbox', 'checkbox', 'radio', 'combobox', 'slider', 'spinbutton', 'tab', 'link', 'switch', 'searchbox', 'listbox', 'menuitem']);
  const unnamed = [];
  for (const node of nodes) {
    if (node.ignored) continue;
    const role = node.role?.value;
    if (!controls.has(role)) continue;
    const name = (node.name?.value ?? '').trim();
    if (!name) {
      let id = '';
      if (node.backendDOMNodeId) {
        const { node: dom } = await cdp.send('DOM.describeNode', { backendNodeId: node.backendDOMNodeId });
        const attrs = dom.attributes ?? [];
        const i = attrs.indexOf('id');
        id = i >= 0 ? `#${attrs[i + 1]}` : `<${dom.localName}>`;
      }
      unnamed.push(`${role} ${id}`);
    }
  }
  await cdp.detach();
  return unnamed;
}
