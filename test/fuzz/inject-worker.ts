// A worker thread that answers fuzz cases through app.inject, so that the main thread can notice a
// case that blocks the event loop (a hang) and report it, instead of hanging with it.
import { parentPort } from 'node:worker_threads';
import type { FuzzCase } from './cases.js';
import { fuzzApp, injectCase } from './send.js';

const app = fuzzApp();
const port = parentPort;
if (!port) throw new Error('inject-worker runs as a worker thread');
port.on('message', (c: FuzzCase) => {
  // A Buffer arrives as a Uint8Array.
  const body = Buffer.from(c.body.buffer, c.body.byteOffset, c.body.byteLength);
  const started = performance.now();
  void injectCase(app, { ...c, body }).then((answer) => {
    const ms = performance.now() - started;
    port.postMessage(answer instanceof Error ? { error: answer.message, ms } : { answer, ms });
  });
});
