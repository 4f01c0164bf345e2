// Starts SOW Studio: fetches the WebAssembly module while the static shell shows how much has
// arrived, then hands it to wasm-bindgen's initializer. A file rather than Trunk's inline
// script, so that the Content-Security-Policy needs no 'unsafe-inline'. Trunk fills in the
// script tag's data-js and data-wasm (Trunk.toml, pattern_script).

const script = document.querySelector('script[data-wasm]');
const status = document.getElementById('boot-status');

function say(text, state) {
  if (!status) return;
  status.textContent = text;
  if (state) status.dataset.state = state;
}

/** The response, its body counted as it streams in (shown in the shell). */
function withProgress(response) {
  const total = Number(response.headers.get('content-length')) || 0;
  // A compressed transfer's length counts compressed bytes: show megabytes only.
  const exact = total > 0 && !response.headers.get('content-encoding');
  if (!response.body) return response;
  let done = 0;
  const counted = response.body.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        done += chunk.byteLength;
        const mb = (done / 1e6).toFixed(1);
        say(exact ? `Loading the app… ${mb} of ${(total / 1e6).toFixed(1)} MB` : `Loading the app… ${mb} MB`);
        controller.enqueue(chunk);
      },
    }),
  );
  return new Response(counted, { headers: { 'content-type': 'application/wasm' } });
}

async function start() {
  performance.mark('sow-boot');
  if (typeof WebAssembly !== 'object') throw new Error('this browser cannot run WebAssembly');
  const response = await fetch(script.dataset.wasm);
  if (!response.ok) throw new Error(`its module could not be fetched (HTTP ${response.status})`);
  const { default: init } = await import(script.dataset.js);
  say('Starting the app…');
  await init({ module_or_path: withProgress(response) });
  // The module is compiled and the app mounted (main() ran inside init).
  performance.mark('sow-app-started');
}

start().catch((error) => {
  say(
    `SOW Studio could not start: ${error.message}. Reload the page; if that does not help, ` +
      'try a current Chrome or Edge.',
    'error',
  );
  console.error(error);
});
