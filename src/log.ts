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
 * Every mutated pod is logged, so under load lines are written in batches: up to 4 KiB is buffered
 * and written asynchronously, and whatever is buffered goes out within 100 ms anyway. pino writes
 * the rest synchronously when the process exits. Past 16 MiB waiting (stdout not being read) lines
 * are dropped rather than holding up admissions or memory.
 */
export function createLogger(level: string): Logger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100, maxLength: 16 * 1024 * 1024 });
  return pino({ level, base: { name: 'meshguard' }, timestamp: isoTime }, destination);
}
