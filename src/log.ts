import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

// pino's isoTime formats a Date for every line, which costs more than the rest of a decision line.
// The text is made once per second, and each millisecond only writes its digits into it. (Cost and
// equivalence test: the ledger in bench/RESULTS.md.)
let lastMs = NaN;
let lastTime = '';
let lastSecond = NaN;
let secondText = ''; // `,"time":"2026-11-21T20:46:50.`
/** pino's time field for the instant `now` (ms since the epoch, ≥ 0): `,"time":"<ISO 8601>"`. */
export function timeField(now: number): string {
  if (now !== lastMs) {
    lastMs = now;
    const ms = now % 1000;
    if (now - ms !== lastSecond) {
      lastSecond = now - ms;
      secondText = `,"time":"${new Date(lastSecond).toISOString().slice(0, -4)}`;
    }
    lastTime = `${secondText}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  }
  return lastTime;
}

// Each batch costs sonic-boom's bookkeeping and a write(2), which wakes the pipe's reader: fewer,
// larger batches cost less per line (bench/RESULTS.md). 32 KiB (about 100 decision lines) leaves
// room for two batches in a pipe's default 64 KiB, so a write seldom waits for the reader.
export const LOG_BATCH = 32 * 1024;

/**
 * Lines batched in front of pino's synchronous destination (sonic-boom, in buffer mode): a line is
 * appended to a string, and sonic-boom gets each batch encoded once, as a buffer, which it writes
 * with write(2), retrying EAGAIN on a non-blocking pipe. Handed strings, sonic-boom measures each
 * one's UTF-8 length and encodes it again to write it; its own `minLength` buffering measures
 * everything buffered on every write.
 */
function batched(sink: ReturnType<typeof pino.destination>): DestinationStream & { flush(): void } {
  let pending = '';
  const flush = () => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    // A UTF-16 unit is at most 3 bytes of UTF-8: encoded in one pass into room for the worst case,
    // where Buffer.from would measure the text's UTF-8 length first (a fifth of a line's cost).
    const batch = Buffer.allocUnsafe(text.length * 3);
    sink.write(batch.subarray(0, batch.write(text)) as unknown as string);
  };
  return {
    write(line: string) {
      pending += line;
      if (pending.length >= LOG_BATCH) flush();
    },
    flush,
  };
}

/**
 * JSON lines on stdout; the level names of pino (fatal … trace, silent).
 *
 * Every mutated pod is logged, so under load lines are written in batches of 32 KiB, synchronously
 * (handing each batch to libuv's thread pool costs more than the write); whatever is pending goes
 * out within `flushMs` (100 ms) anyway, and when the process exits. A SIGKILL loses at most the last 32 KiB.
 */
export function createLogger(level: string, flushMs = 100): Logger {
  const sink = pino.destination({ dest: 1, sync: true, contentMode: 'buffer' });
  const destination = batched(sink);
  setInterval(destination.flush, flushMs).unref();
  process.once('exit', () => {
    try {
      destination.flush();
      sink.flushSync();
    } catch {
      // stdout already gone: nothing to save the lines to
    }
  });
  // No base fields: a decision line's `name` is the object's (pid and hostname say nothing in a pod).
  // No redact, formatters, mixin or hooks: decision lines (lineWriter) would bypass them.
  return pino({ level, base: null, timestamp: () => timeField(Date.now()) }, destination);
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
 * A writer of lines with one message, whose fields are given as JSON text (`"key":value,…`): each
 * line is assembled from the logger's own parts exactly as pino assembles one (level, time,
 * bindings, fields, message, end) and written to its stream. For the decision lines only: logging
 * a fields object through pino runs its generic serialiser over every field of every line, where
 * the decision's fields are known (cost and equivalence test: the ledger in bench/RESULTS.md).
 *
 * These lines bypass pino's line pipeline: its `redact` paths, its `formatters` (level, bindings
 * and log), its `mixin`, its `hooks` (logMethod) and its serializers never see them. createLogger
 * sets none of those; a logger given any of them must not be handed to lineWriter.
 */
export function lineWriter(logger: Logger, msg: string): (level: string, fields: string) => void {
  // The parts a logger's lines are made of are fixed when it is made (pino rebuilds them only for a
  // child, which is another logger): read once, not per line.
  const parts = logger as unknown as PinoParts;
  const stream = parts[pino.symbols.streamSym];
  const levelText = parts[pino.symbols.lsCacheSym];
  const time = parts[pino.symbols.timeSym];
  const bindings = parts[pino.symbols.chindingsSym];
  const end = `,"${parts[pino.symbols.messageKeySym]}":${JSON.stringify(msg)}${parts[pino.symbols.endSym]}`;
  const levels = logger.levels.values;
  return (level, fields) => {
    stream.write(`${levelText[levels[level] as number]}${time()}${bindings}${fields === '' ? '' : ','}${fields}${end}`);
  };
}
