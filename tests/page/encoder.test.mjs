// End-to-end page test: the Trunk build, served by a tiny static server, in headless Chromium
// (WebGPU on SwiftShader, i.e. on the CPU). It checks that the page finds a WebGPU adapter and
// that the text encoder check reproduces the golden outputs of the tiny model.
//
//   DIST_DIR        the Trunk output (default: ../../dist from this file)
//   CHROMIUM        the browser (default: /usr/bin/chromium)
//   SCREENSHOT_DIR  where to save a screenshot of the finished page (optional)
//
// Run: node --test tests/page/   (scripts/page-test.sh builds first)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const distDir = resolve(process.env.DIST_DIR ?? join(here, '..', '..', 'dist'));
const goldensDir = join(here, '..', 'fixtures', 'goldens');

// Absolute tolerance on the hidden states: the goldens come from PyTorch in f32 on the CPU,
// the page computes in f32 on WebGPU (SwiftShader here); values are O(1), so 1e-3 allows for
// reordered sums and a different erf/exp, and still catches any wrong weight or op.
const VALUE_TOLERANCE = 1e-3;

// Only --enable-unsafe-webgpu is needed for WebGPU on SwiftShader in headless Chromium here
// (probed: without it, requestAdapter() returns null). Playwright itself already adds
// --no-sandbox (no chromiumSandbox), --enable-unsafe-swiftshader, --no-first-run,
// --disable-background-networking, --disable-component-update and --disable-sync.
const CHROMIUM_ARGS = ['--enable-unsafe-webgpu'];

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** A static file server over `root` on 127.0.0.1, on a free port. */
async function serve(root) {
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      let file = resolve(root, '.' + (path.endsWith('/') ? path + 'index.html' : path));
      if (file !== root && !file.startsWith(root + sep)) throw Object.assign(new Error(), { code: 'ENOENT' });
      if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch (e) {
      res.writeHead(e.code === 'ENOENT' || e.code === 'EISDIR' ? 404 : 500);
      res.end(String(e.message ?? e));
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

/** Reads one F32 tensor from a safetensors file: 8-byte LE header length, JSON header, data. */
async function readSafetensorsF32(path, name) {
  const bytes = await readFile(path);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
  const entry = header[name];
  assert.ok(entry, `${path} has no tensor ${name} (has: ${Object.keys(header).join(', ')})`);
  assert.equal(entry.dtype, 'F32', `${name} is ${entry.dtype}, expected F32`);
  const [begin, end] = entry.data_offsets;
  const data = bytes.subarray(8 + headerLen + begin, 8 + headerLen + end);
  // Copy into an aligned buffer: the data may start at any byte.
  const values = new Float32Array(new Uint8Array(data).buffer);
  return { shape: entry.shape, values };
}

let server;
let baseUrl;
let browser;
let page;
const consoleErrors = [];

/** What the page said, for failure messages. */
function pageLog() {
  return consoleErrors.length ? `\npage console errors:\n  ${consoleErrors.join('\n  ')}` : '\n(no page console errors)';
}

before(async () => {
  await stat(join(distDir, 'index.html')).catch(() => {
    throw new Error(`no Trunk build at ${distDir} (run scripts/page-test.sh, or set DIST_DIR)`);
  });
  ({ server, url: baseUrl } = await serve(distDir));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  // A new context is a fresh, temporary profile.
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
  page.on('requestfailed', (req) => consoleErrors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('response', (res) => {
    if (res.status() >= 400) consoleErrors.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  await page.goto(baseUrl);
});

after(async () => {
  await browser?.close();
  server?.close();
});

test('the page finds a WebGPU adapter and shows its limits', async () => {
  await assert.doesNotReject(
    page.waitForSelector('#webgpu-status:not([data-state="checking"])', { timeout: 60_000 }),
    `the WebGPU probe did not finish${pageLog()}`,
  );
  const status = page.locator('#webgpu-status');
  const state = await status.getAttribute('data-state');
  const text = await status.textContent();
  const advice = await page.locator('#adapter-info').textContent();
  assert.equal(state, 'ready', `#webgpu-status: ${text} ${advice}${pageLog()}`);
  assert.match(text, /adapter found/);

  for (const limit of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup']) {
    const value = await page.locator(`#adapter-info [data-limit="${limit}"]`).getAttribute('data-value');
    assert.ok(Number(value) > 0, `limit ${limit} shown as ${JSON.stringify(value)}`);
  }
  const f16 = await page.locator('#adapter-info [data-feature="shader-f16"]').getAttribute('data-value');
  assert.ok(f16 === 'true' || f16 === 'false', `shader-f16 shown as ${JSON.stringify(f16)}`);
});

/** Mean and population std of a slice, in f64 like the page. */
function stats(values) {
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

/** Types a prompt, presses Run, waits for the end of the run; returns what the page shows. */
async function runEncoder(prompt) {
  await page.fill('#prompt', prompt);
  await page.click('#run-encoder');
  // The status leaves "done" as soon as the click is handled; wait for that first so that a
  // second run is not mistaken for the first one.
  await page.waitForSelector('#encoder-status[data-state="busy"]', { timeout: 10_000 }).catch(() => {});
  // SwiftShader runs WebGPU on the CPU: be generous.
  await page
    .waitForFunction(
      () => {
        const text = document.querySelector('#encoder-status')?.textContent ?? '';
        return text === 'done' || text.startsWith('error');
      },
      null,
      { timeout: 180_000, polling: 250 },
    )
    .catch(async (e) => {
      const now = await page.locator('#encoder-status').textContent();
      throw new Error(`the encoder check did not finish in 180 s (status: ${now}): ${e.message}${pageLog()}`);
    });
  const status = await page.locator('#encoder-status').textContent();
  assert.equal(status, 'done', `#encoder-status: ${status}${pageLog()}`);
  const attr = async (selector, name) => JSON.parse(await page.locator(selector).getAttribute(name));
  return {
    ids: await attr('#encoder-tokens', 'data-tokens'),
    shape: await attr('#encoder-shape', 'data-shape'),
    values: await attr('#encoder-values', 'data-values'),
    mean: await attr('#encoder-stats', 'data-mean'),
    std: await attr('#encoder-stats', 'data-std'),
    elapsed: await page.locator('#encoder-time').textContent(),
  };
}

/** Asserts |a - b| <= VALUE_TOLERANCE element-wise; returns the largest difference. */
function assertClose(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
  assert.ok(
    worst <= VALUE_TOLERANCE,
    `${what} differs by up to ${worst.toExponential(2)} (tolerance ${VALUE_TOLERANCE})\n` +
      `  page:   ${actual.map((v) => v.toFixed(6)).join(' ')}\n` +
      `  golden: ${expected.map((v) => v.toFixed(6)).join(' ')}`,
  );
  return worst;
}

test('the text encoder check reproduces the goldens', { timeout: 400_000 }, async () => {
  const golden = JSON.parse(await readFile(join(goldensDir, 'text_encoder.json'), 'utf8'));
  const hidden = await readSafetensorsF32(join(goldensDir, 'text_encoder.safetensors'), 'last_hidden_state');
  const [, tokens, width] = hidden.shape;
  const row = (i) => hidden.values.subarray(i * tokens * width, (i + 1) * tokens * width);

  // The first golden prompt: the checks the page shows.
  const first = await runEncoder(golden.prompts[0]);
  assert.deepEqual(first.ids, golden.input_ids[0], 'token ids differ from goldens input_ids[0]');
  assert.deepEqual(first.shape, [1, tokens, width], 'output shape');
  const worst = assertClose(first.values, Array.from(row(0).subarray(0, 8)), 'last_hidden_state[0,0,:8]');
  // Position 0 is the start token, which (causal mask) sees nothing else: its values are the
  // same for every prompt. Mean and std cover all 77 positions, so they check the prompt too.
  const want = stats(row(0));
  assertClose([first.mean, first.std], [want.mean, want.std], 'mean/std of last_hidden_state[0]');
  console.log(`encoder check: max |page - golden| = ${worst.toExponential(2)}, ${first.elapsed}`);

  // A second run on the same page, with the longest golden prompt: the WebGPU device is reused
  // (burn allows one initialization per page) and truncation to 77 tokens matches.
  const last = golden.prompts.length - 1;
  const second = await runEncoder(golden.prompts[last]);
  assert.deepEqual(second.ids, golden.input_ids[last], `token ids differ from goldens input_ids[${last}]`);
  const want2 = stats(row(last));
  assertClose([second.mean, second.std], [want2.mean, want2.std], `mean/std of last_hidden_state[${last}]`);
  console.log(`second run (cached device): ${second.elapsed}`);
});

test('without WebGPU the page says what to do', async () => {
  // A second browser without --enable-unsafe-webgpu: headless Chromium then returns no adapter.
  const bare = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true });
  try {
    const other = await bare.newPage();
    await other.goto(baseUrl);
    await other.waitForSelector('#webgpu-status:not([data-state="checking"])', { timeout: 60_000 });
    const state = await other.locator('#webgpu-status').getAttribute('data-state');
    assert.ok(['no-adapter', 'missing'].includes(state), `#webgpu-status data-state=${state}`);
    assert.match(await other.locator('#adapter-info').textContent(), /chrome:\/\/gpu|Chrome or Edge 113/);
  } finally {
    await bare.close();
  }
});

test('screenshot', { skip: !process.env.SCREENSHOT_DIR && 'SCREENSHOT_DIR not set' }, async () => {
  const dir = resolve(process.env.SCREENSHOT_DIR);
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'sow-studio-page.png');
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
});
