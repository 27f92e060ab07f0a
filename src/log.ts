import pino, { type DestinationStream, type Logger } from 'pino';

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

const BATCH = 4096;

/**
 * Lines batched in front of pino's synchronous destination (sonic-boom). Its own `minLength`
 * buffering measures the UTF-8 length of everything buffered on every write, which flattens the
 * buffer each time: about 2.4 KB of garbage and 1 µs per 330-byte line. Here a line is appended
 * to a string and sonic-boom gets one string per batch, which it writes with write(2), retrying
 * EAGAIN on a non-blocking pipe.
 */
function batched(sink: ReturnType<typeof pino.destination>): DestinationStream & { flush(): void } {
  let pending = '';
  const flush = () => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    sink.write(text);
  };
  return {
    write(line: string) {
      pending += line;
      if (pending.length >= BATCH) flush();
    },
    flush,
  };
}

/**
 * JSON lines on stdout; the level names of pino (fatal … trace, silent).
 *
 * Every mutated pod is logged, so under load lines are written in batches of 4 KiB, synchronously
 * (handing each batch to libuv's thread pool costs more than the write); whatever is pending goes
 * out within 100 ms anyway, and when the process exits. A SIGKILL loses at most the last 4 KiB.
 */
export function createLogger(level: string): Logger {
  const sink = pino.destination({ dest: 1, sync: true });
  const destination = batched(sink);
  setInterval(destination.flush, 100).unref();
  process.once('exit', () => {
    try {
      destination.flush();
      sink.flushSync();
    } catch {
      // stdout already gone: nothing to save the lines to
    }
  });
  // No base fields: a decision line's `name` is the object's (pid and hostname say nothing in a pod).
  return pino({ level, base: null, timestamp: isoTime }, destination);
}
