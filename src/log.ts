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
/** Room for a batch and the line that completes it: a UTF-16 unit takes at most 3 bytes of UTF-8. */
const ROOM = 4 * BATCH;

/**
 * Lines batched in front of pino's synchronous destination (sonic-boom, in buffer mode). Each line
 * is encoded once, into the batch's buffer; sonic-boom gets one buffer per batch and writes it
 * with write(2), retrying EAGAIN on a non-blocking pipe. Handing it strings instead cost three
 * passes over each one (its byte length, flattening the concatenated batch, encoding it again to
 * write), about 17 000 instructions per pod review (callgrind). A batch's buffer is never reused:
 * sonic-boom keeps it until written.
 */
function batched(sink: ReturnType<typeof pino.destination>): DestinationStream & { flush(): void } {
  let batch = Buffer.allocUnsafeSlow(ROOM);
  let used = 0;
  const flush = () => {
    if (used === 0) return;
    const full = batch.subarray(0, used);
    batch = Buffer.allocUnsafeSlow(ROOM);
    used = 0;
    sink.write(full as unknown as string);
  };
  return {
    write(line: string) {
      if (line.length * 3 > ROOM - used) {
        // Only a line of thousands of characters: it goes out on its own.
        flush();
        sink.write(Buffer.from(line) as unknown as string);
        return;
      }
      used += batch.write(line, used);
      if (used >= BATCH) flush();
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
  const sink = pino.destination({ dest: 1, sync: true, contentMode: 'buffer' });
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

type PinoParts = Record<symbol, unknown> & {
  [pino.symbols.streamSym]: DestinationStream;
  [pino.symbols.lsCacheSym]: Record<number, string>;
  [pino.symbols.timeSym]: () => string;
  [pino.symbols.chindingsSym]: string;
  [pino.symbols.messageKeySym]: string;
  [pino.symbols.endSym]: string;
};

/**
 * Writes a line whose fields are already JSON text (`"key":value,…`), assembled from the logger's
 * own parts exactly as pino assembles one (level, time, bindings, fields, message, end) and written
 * to its stream. For the decision lines only: logging a fields object through pino (a child per
 * request, then its generic serialiser per line) cost about 30 000 instructions per pod review,
 * 7 % of the review's CPU, which writing the known fields as text does in a fifth of that
 * (callgrind). Loggers with mixins, hooks or formatters for the line would be bypassed: createLogger
 * makes none.
 */
export function writeLine(logger: Logger, level: string, fields: string, msg: string): void {
  const parts = logger as unknown as PinoParts;
  const num = logger.levels.values[level] as number;
  const text =
    parts[pino.symbols.lsCacheSym][num] +
    parts[pino.symbols.timeSym]() +
    parts[pino.symbols.chindingsSym] +
    (fields === '' ? '' : ',' + fields) +
    ',"' +
    parts[pino.symbols.messageKeySym] +
    '":' +
    JSON.stringify(msg) +
    parts[pino.symbols.endSym];
  parts[pino.symbols.streamSym].write(text);
}
