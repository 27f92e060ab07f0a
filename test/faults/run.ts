// `npm run faults`: the fault scenario (test/faults/scenario.ts) for 60 s; prints the counts and
// exits 1 on any failure.
//   npm run faults -- [--seconds 60] [--concurrency 8] [--config-writes rename|in-place]
import { parseArgs } from 'node:util';
import { runFaults, summary } from './scenario.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '8' },
    'config-writes': { type: 'string', default: 'rename' },
  },
});
const writes = values['config-writes'];
if (writes !== 'rename' && writes !== 'in-place') throw new Error('--config-writes: rename or in-place');

const report = await runFaults({
  durationMs: Number(values.seconds) * 1000,
  concurrency: Number(values.concurrency),
  certSwaps: 2,
  configChanges: 10,
  shutdownDelaySeconds: 2,
  configWrites: writes,
  log: (line) => console.log(line),
});
console.log(`\n${summary(report)}`);
console.log(report.failures.length === 0 ? 'OK' : 'FAILED');
process.exit(report.failures.length === 0 ? 0 : 1);
