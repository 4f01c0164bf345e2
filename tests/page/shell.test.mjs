// The app's frame in headless Chromium: it starts from a static shell within the budgets, the
// tabs work by mouse and keyboard and the URL names the page, every control has a name, the
// Content-Security-Policy holds, the page without WebGPU says what to do, and screenshots of
// every page at laptop and phone widths (light and dark) are saved for a person to look at.
//
// Run: scripts/page-test.sh (builds first), or `node --test tests/page/` with DIST_DIR set.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { artifactsDir, distDir, launch, openApp, openPage, screenshot, unnamedControls, VIEWPORTS, watched } from './support/browser.mjs';
import { serveApp } from './support/servers.mjs';

// Budgets (issue 9): the module's transfer size, and the times from navigation start.
const WASM_GZIP_BUDGET = 5_000_000;
const SHELL_PAINT_BUDGET_MS = 1_000;
const INTERACTIVE_BUDGET_MS = 3_000;

const PAGES = [
  { tab: 'Studio', slug: 'studio', heading: 'Studio' },
  { tab: 'Model', slug: 'model', heading: 'Model' },
  { tab: 'Toy lab', slug: 'toy', heading: 'Toy lab' },
  { tab: 'Settings', slug: 'settings', heading: 'Settings' },
  { tab: 'Diagnostics', slug: 'diagnostics', heading: 'Diagnostics' },
];

let app;
let browser;

before(async () => {
  await stat(join(distDir, 'index.html')).catch(() => {
    throw new Error(`no Trunk build at ${distDir} (run scripts/page-test.sh, or set DIST_DIR)`);
  });
  app = await serveApp(distDir);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await app?.close();
});

/** All files under a folder, as paths relative to it. */
async function listFiles(dir, prefix = '') {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix + entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(join(dir, entry.name), rel + '/')));
    else out.push(rel);
  }
  return out;
}

test('the build is within the size budget and carries no test fixtures', async () => {
  const files = await listFiles(distDir);
  const wasm = files.filter((f) => f.endsWith('.wasm'));
  assert.equal(wasm.length, 1, `one module expected in dist, found ${wasm.join(', ')}`);
  const bytes = await readFile(join(distDir, wasm[0]));
  const gzipped = gzipSync(bytes, { level: 9 }).length;
  console.log(`wasm: ${(bytes.length / 1e6).toFixed(2)} MB, ${(gzipped / 1e6).toFixed(2)} MB gzip (budget ${WASM_GZIP_BUDGET / 1e6} MB)`);
  assert.ok(gzipped <= WASM_GZIP_BUDGET, `the module is ${gzipped} bytes gzipped, over the ${WASM_GZIP_BUDGET}-byte budget`);
  const fixtures = files.filter((f) => /tiny-sd2|\.safetensors$|goldens/.test(f));
  assert.deepEqual(fixtures, [], 'the shipped app must not carry test fixtures');
});

test('the static shell paints and the app becomes interactive within the budgets', async () => {
  const { context, page, describe } = await openPage(browser);
  try {
    await openApp(page, app.url, describe);
    const times = await page.evaluate(() => {
      const at = (name) => performance.getEntriesByName(name)[0]?.startTime;
      const wasm = performance.getEntriesByType('resource').find((e) => e.name.endsWith('.wasm'));
      return {
        paint: at('first-contentful-paint'),
        boot: at('sow-boot'),
        wasmFetched: wasm?.responseEnd,
        main: at('sow-main'),
        started: at('sow-app-started'),
        interactive: at('sow-app-interactive'),
      };
    });
    const ms = (v) => (v === undefined ? '?' : `${v.toFixed(0)} ms`);
    console.log(
      `first contentful paint ${ms(times.paint)}, boot.js ${ms(times.boot)}, module fetched ${ms(times.wasmFetched)}, ` +
        `compiled, main() from ${ms(times.main)}, mounted ${ms(times.started)}, interactive ${ms(times.interactive)}`,
    );
    assert.ok(times.paint <= SHELL_PAINT_BUDGET_MS, `the shell painted at ${times.paint} ms (budget ${SHELL_PAINT_BUDGET_MS})`);
    assert.ok(times.interactive <= INTERACTIVE_BUDGET_MS, `interactive at ${times.interactive} ms (budget ${INTERACTIVE_BUDGET_MS})`);
    const wasmFetches = app.requests.filter((r) => r.endsWith('.wasm'));
    assert.equal(wasmFetches.length, 1, `the module was fetched ${wasmFetches.length} times (the preload must be reused)`);
    const { cspViolations } = await watched(page);
    assert.deepEqual(cspViolations, [], 'Content-Security-Policy violations');
  } finally {
    await context.close();
  }
});

test('tabs open pages by mouse and keyboard, and the URL names the page', async () => {
  const { context, page, describe } = await openPage(browser);
  try {
    await openApp(page, app.url, describe);
    const visibleHeading = () => page.locator('[role="tabpanel"]:not([hidden]) h1').textContent();
    assert.equal(await visibleHeading(), 'Studio', 'the landing page');
    await page.getByRole('tab', { name: 'Model' }).click();
    assert.equal(await visibleHeading(), 'Model');
    assert.equal(new URL(page.url()).hash, '#model');
    assert.equal(await page.getByRole('tab', { name: 'Model' }).getAttribute('aria-selected'), 'true');

    // Arrow keys move between tabs and open them; Home and End jump.
    await page.keyboard.press('ArrowRight');
    assert.equal(await visibleHeading(), 'Toy lab');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('role')), 'tab');
    await page.keyboard.press('End');
    assert.equal(await visibleHeading(), 'Diagnostics');
    await page.keyboard.press('Home');
    assert.equal(await visibleHeading(), 'Studio');

    // Back returns to the previous page; a reload opens the page the URL names.
    await page.getByRole('tab', { name: 'Settings' }).click();
    await page.goBack();
    await page.waitForFunction(() => location.hash !== '#settings');
    assert.notEqual(await visibleHeading(), 'Settings');
    await page.goto(new URL('#diagnostics', app.url).href);
    await page.reload();
    await openApp(page, new URL('#diagnostics', app.url).href, describe);
    assert.equal(await visibleHeading(), 'Diagnostics');
  } finally {
    await context.close();
  }
});

test('every control on every page has a name, and the policy is never violated', async () => {
  const { context, page, log, describe } = await openPage(browser);
  try {
    await openApp(page, app.url, describe);
    for (const { tab, heading } of PAGES) {
      await page.getByRole('tab', { name: tab }).click();
      await page.getByRole('heading', { level: 1, name: heading }).waitFor();
      const unnamed = await unnamedControls(page);
      assert.deepEqual(unnamed, [], `controls without an accessible name on ${tab}`);
    }
    const { cspViolations } = await watched(page);
    assert.deepEqual(cspViolations, [], 'Content-Security-Policy violations');
    assert.deepEqual(log.filter((l) => !l.includes('favicon')), [], `the page logged errors${describe()}`);
  } finally {
    await context.close();
  }
});

test('Diagnostics shows the WebGPU adapter and its limits', async () => {
  const { context, page, describe } = await openPage(browser);
  try {
    await openApp(page, new URL('#diagnostics', app.url).href, describe);
    await page.waitForSelector('#webgpu-status:not([data-state="checking"])', { timeout: 60_000 });
    const status = page.locator('#webgpu-status');
    const text = await status.textContent();
    assert.equal(await status.getAttribute('data-state'), 'ready', `#webgpu-status: ${text}${describe()}`);
    assert.match(text, /adapter found/);
    for (const limit of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup']) {
      const value = await page.locator(`#adapter-info [data-limit="${limit}"]`).getAttribute('data-value');
      assert.ok(Number(value) > 0, `limit ${limit} shown as ${JSON.stringify(value)}`);
    }
    const f16 = await page.locator('#adapter-info [data-feature="shader-f16"]').getAttribute('data-value');
    assert.ok(f16 === 'true' || f16 === 'false', `shader-f16 shown as ${JSON.stringify(f16)}`);
    await page.locator('#browser-facts').waitFor();
    assert.match(await page.locator('#browser-facts').textContent(), /Secure context/);
  } finally {
    await context.close();
  }
});

test('without WebGPU the pages say so and what to do', async () => {
  const bare = await launch({ webgpu: false });
  try {
    const { page, describe } = await openPage(bare);
    await openApp(page, app.url, describe);
    const alert = page.locator('#page-studio [role="alert"]');
    await alert.waitFor({ timeout: 60_000 });
    const text = await alert.textContent();
    assert.match(text, /WebGPU/);
    assert.match(text, /chrome:\/\/gpu|Chrome or Edge 113/);
    await screenshot(page, 'no-webgpu-studio-laptop');
    await page.getByRole('link', { name: /Diagnostics/ }).first().click();
    const state = await page.locator('#webgpu-status').getAttribute('data-state');
    assert.ok(['no-adapter', 'missing'].includes(state), `#webgpu-status data-state=${state}`);
  } finally {
    await bare.close();
  }
});

test('screenshots of every page at laptop and phone widths, light and dark', async () => {
  const dir = await artifactsDir();
  for (const [width, viewport] of Object.entries(VIEWPORTS)) {
    for (const colorScheme of ['light', 'dark']) {
      const context = await browser.newContext({ viewport, colorScheme });
      const page = await context.newPage();
      await openApp(page, app.url);
      for (const { tab, slug, heading } of PAGES) {
        await page.getByRole('tab', { name: tab }).click();
        await page.getByRole('heading', { level: 1, name: heading }).waitFor();
        if (slug === 'diagnostics') await page.waitForSelector('#webgpu-status:not([data-state="checking"])', { timeout: 60_000 });
        await screenshot(page, `${slug}-${width}-${colorScheme}`);
        // Nothing may stick out sideways (a phone would scroll the whole page).
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(overflow <= 0, `${tab} at ${width} width is ${overflow}px wider than the screen`);
      }
      await context.close();
    }
  }
  console.log(`screenshots saved in ${dir}`);
});
