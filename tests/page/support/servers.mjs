// Real HTTP servers on 127.0.0.1 for the page tests: the built app (static files), and a
// model server that serves a diffusers folder the way a weights mirror does (CORS, Range,
// byte counts, injected faults). Nothing here reaches beyond the loopback interface.

import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';

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

/** The file under `root` that a URL path names, or null when it leaves `root`. */
function fileFor(root, urlPath) {
  const path = decodeURIComponent(new URL(urlPath, 'http://x').pathname);
  const file = resolve(root, '.' + (path.endsWith('/') ? path + 'index.html' : path));
  return file === root || file.startsWith(root + sep) ? file : null;
}

async function listen(server) {
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${server.address().port}/`;
}

/**
 * Serves the Trunk build in `root`. `requests` lists every path asked for, in order.
 */
export async function serveApp(root) {
  const requests = [];
  const server = createServer(async (req, res) => {
    requests.push(req.url);
    try {
      let file = fileFor(root, req.url);
      if (!file) throw Object.assign(new Error('outside the root'), { code: 'ENOENT' });
      if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': body.length,
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch (e) {
      res.writeHead(e.code === 'ENOENT' || e.code === 'EISDIR' ? 404 : 500);
      res.end(String(e.message ?? e));
    }
  });
  const url = await listen(server);
  return { url, requests, close: () => new Promise((ok) => server.close(ok)) };
}

/**
 * Serves a model folder as a weights mirror does: any origin may read it (CORS, no
 * credentials), single `Range: bytes=a-b` / `bytes=a-` requests get 206, preflights are
 * refused (the app must never need one). `bytesSent` counts body bytes per path; `faults`
 * maps a path (e.g. 'unet/diffusion_pytorch_model.safetensors') to one of
 * `{ status: 404 }`, `{ html: true }` (a 200 HTML page), `{ cutAfter: n }` (drop the
 * connection after n body bytes), `{ noRange: true }` (ignore Range).
 */
export async function serveModel(root) {
  const requests = [];
  const bytesSent = new Map();
  const faults = new Map();
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '');
    requests.push({ method: req.method, path, range: req.headers.range ?? null });
    const cors = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-length, content-range, accept-ranges' };
    if (req.method === 'OPTIONS') {
      res.writeHead(405, cors);
      res.end('preflight refused: a weights request must be a simple GET');
      return;
    }
    const fault = faults.get(path) ?? {};
    if (fault.status) {
      res.writeHead(fault.status, { ...cors, 'content-type': 'text/plain' });
      res.end(`${fault.status}`);
      return;
    }
    if (fault.html) {
      res.writeHead(200, { ...cors, 'content-type': 'text/html' });
      res.end('<!doctype html><html><body><h1>Sign in to continue</h1></body></html>');
      return;
    }
    const file = fileFor(root, '/' + path);
    let body;
    try {
      body = await readFile(file);
    } catch {
      res.writeHead(404, { ...cors, 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    let start = 0;
    let end = body.length;
    let status = 200;
    const headers = { ...cors, 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'accept-ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && !fault.noRange) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]) + 1, body.length) : body.length;
      if (start >= body.length) {
        res.writeHead(416, { ...headers, 'content-range': `bytes */${body.length}` });
        res.end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end - 1}/${body.length}`;
    }
    headers['content-length'] = end - start;
    res.writeHead(status, headers);
    let slice = body.subarray(start, end);
    if (fault.cutAfter !== undefined) {
      slice = slice.subarray(0, fault.cutAfter);
      res.write(slice);
      bytesSent.set(path, (bytesSent.get(path) ?? 0) + slice.length);
      res.socket.destroy();
      return;
    }
    bytesSent.set(path, (bytesSent.get(path) ?? 0) + slice.length);
    res.end(slice);
  });
  const url = await listen(server);
  return {
    url,
    requests,
    bytesSent,
    faults,
    /** Body bytes of weights files (`*.safetensors`) sent so far. */
    weightBytes: () => [...bytesSent].filter(([p]) => p.endsWith('.safetensors')).reduce((a, [, n]) => a + n, 0),
    close: () => new Promise((ok) => server.close(ok)),
  };
}
