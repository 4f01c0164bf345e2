// A stub of the Gemini API on 127.0.0.1, speaking its wire format: POST
// `/v1beta/models/<model>:generateContent` with the key in `x-goog-api-key`, answered with
// `candidates[0].content.parts[0].text` holding the JSON the planner's schema asks for. The
// planner's three calls are told apart by their response schemas. CORS as Google's API does
// (the browser preflights the key header). `fail` makes every call answer 500.

import { createServer } from 'node:http';

function answerFor(body, canvas) {
  const properties = body?.generationConfig?.responseSchema?.properties ?? {};
  const s = canvas / 128;
  if (properties.intensified_prompt) {
    return { description: 'a face', intensified_prompt: 'a knight with a red shield in a misty forest', human_face: true };
  }
  if (properties.boxes) return { boxes: [{ condition: 1, box: { x: 40 * s, y: 8 * s, w: 64 * s, h: 64 * s } }] };
  return { regions: [{ condition: 1, related: [{ box: { x: 16 * s, y: 64 * s, w: 96 * s, h: 64 * s } }] }] };
}

export async function serveGemini({ canvas = 128, fail = false } = {}) {
  const calls = [];
  const server = createServer((req, res) => {
    const cors = {
      'access-control-allow-origin': '*',
      'access-control-allow-headers': 'content-type, x-goog-api-key',
      'access-control-allow-methods': 'POST',
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      calls.push({ path: req.url, key: req.headers['x-goog-api-key'] ?? null });
      if (fail) {
        res.writeHead(500, { ...cors, 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 500, message: 'internal', status: 'INTERNAL' } }));
        return;
      }
      const answer = answerFor(JSON.parse(text), canvas);
      res.writeHead(200, { ...cors, 'content-type': 'application/json' });
      res.end(JSON.stringify({
        candidates: [{ content: { parts: [{ text: JSON.stringify(answer) }], role: 'model' }, finishReason: 'STOP', index: 0 }],
        modelVersion: 'gemini-stub',
      }));
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}`, calls, close: () => new Promise((ok) => server.close(ok)) };
}
