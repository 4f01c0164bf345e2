// The text encoder check on the Diagnostics page, against the goldens: the tiny fixture model
// served by a loopback "mirror", fetched by the page, run on WebGPU (SwiftShader), and the
// numbers compared with PyTorch's.
//
// Run: scripts/page-test.sh (builds first), or `node --test tests/page/` with DIST_DIR set.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { distDir, fixturesDir, launch, openApp, openPage, tinyModelDir } from './support/browser.mjs';
import { serveApp, serveModel } from './support/servers.mjs';

const goldensDir = join(fixturesDir, 'goldens');

// Absolute tolerance on the hidden states: the goldens come from PyTorch in f32 on the CPU,
// the page computes in f32 on WebGPU (SwiftShader here); values are O(1), so 1e-3 allows for
// reordered sums and a different erf/exp, and still catches any wrong weight or op.
const VALUE_TOLERANCE = 1e-3;

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

let app;
let model;
let browser;
let page;
let pageLog;

before(async () => {
  app = await serveApp(distDir);
  model = await serveModel(tinyModelDir);
  browser = await launch();
  let describe;
  ({ page, describe } = await openPage(browser));
  pageLog = describe;
  await openApp(page, new URL('#diagnostics', app.url).href, describe);
  await page.getByLabel('Model folder URL').fill(model.url);
});

after(async () => {
  await browser?.close();
  await app?.close();
  await model?.close();
});

/** Mean and population std of a slice, in f64 like the page. */
function stats(values) {
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

/** Types a prompt, presses Run, waits for the end of the run; returns what the page shows. */
async function runEncoder(prompt) {
  await page.getByLabel('Prompt to encode').fill(prompt);
  await page.getByRole('button', { name: 'Run check' }).click();
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
