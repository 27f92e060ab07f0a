// Faults under load, short: certificate files replaced twice, the configuration changed ten times
// and SIGTERM, all while requests keep coming (test/faults/scenario.ts). `npm run faults` runs the
// same for 60 s. FAULTS_SECONDS changes the duration.
import t from 'tap';
import { runFaults, summary } from './faults/scenario.js';

t.test('certificate swaps, configuration changes and SIGTERM under load', async (t) => {
  const report = await runFaults({
    durationMs: Number(process.env.FAULTS_SECONDS ?? 8) * 1000,
    concurrency: 6,
    certSwaps: 2,
    configChanges: 10,
    shutdownDelaySeconds: 1,
    log: (line) => t.comment(line),
  });
  t.comment(summary(report));
  t.strictSame(
    report.failures,
    [],
    'no failed request or handshake, no mixed answer, every in-flight request answered',
  );
  t.equal(report.certSwaps.length, 2, 'two certificate swaps');
  t.ok(
    report.certSwaps.every((s) => s.seenAfter > 0),
    'each new certificate was served',
  );
  t.equal(report.configChanges.length, 10, 'ten configuration changes took effect');
  t.ok((report.byOutcome.A ?? 0) > 0 && (report.byOutcome.B ?? 0) > 0, 'answers from both configurations');
  t.ok(report.sigterm.inFlight > 0, `${report.sigterm.inFlight} requests in flight at SIGTERM`);
  t.equal(report.sigterm.inFlightAnswered, report.sigterm.inFlight, 'all of them answered');
  t.equal(report.sigterm.exitCode, 0, 'exit code 0');
  t.ok(
    report.sigterm.exitMs < report.sigterm.graceMs,
    `exited in ${report.sigterm.exitMs} ms, within the grace period`,
  );
  t.ok((report.byOutcome.refused ?? 0) > 0, 'new connections refused after shutdown');
});
