import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout; the level names of pino (fatal … trace, silent). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { name: 'meshguard' }, timestamp: pino.stdTimeFunctions.isoTime });
}
