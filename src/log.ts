import pino, { type Logger } from 'pino';

export type { Logger };

// pino's isoTime formats a Date for every line, which costs more than the rest of a decision line
// here; lines come in bursts within one millisecond, so the text is kept for the millisecond.
let lastMs = NaN;
let lastTime = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/**
 * JSON lines on stdout; the level names of pino (fatal … trace, silent).
 *
 * Every mutated pod is logged, so under load lines are written in batches: they are buffered up to
 * 4 KiB and then written synchronously in one write(2) (synchronous: handing each batch to libuv's
 * thread pool costs more than the write), and whatever is buffered goes out within 100 ms anyway,
 * and when the process exits. A SIGKILL loses at most the last 4 KiB.
 */
export function createLogger(level: string): Logger {
  const destination = pino.destination({ dest: 1, sync: true, minLength: 4096, periodicFlush: 100 });
  process.once('exit', () => {
    try {
      destination.flushSync();
    } catch {
      // stdout already gone: nothing to save the lines to
    }
  });
  return pino({ level, base: { name: 'meshguard' }, timestamp: isoTime }, destination);
}
