// `meshguard serve` as a real process: TLS, certificate rotation, configuration reload, SIGTERM.
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot } from '../src/paths.js';
import { generateCa } from '../src/tls/generate.js';
import { postJson, startServe, writeServingPair } from './serve-process.js';

const review = readFileSync(
  new URL('fixtures/reviews/destinationrule-create-myservice.validate.json', import.meta.url),
  'utf8',
);
const withUid = (uid: string) => review.replace(/"uid": "[^"]+"/, `"uid": "${uid}"`);

t.test('certificate rotation, config reload and SIGTERM during a burst', async (t) => {
  const configFile = join(process.env.TMPDIR ?? '/tmp', `meshguard-config-${process.pid}.yaml`);
  writeFileSync(configFile, 'mode: enforce\n');
  const served = await startServe(['--config', configFile, '--shutdown-delay', '1']);
  const cas = [served.ca.cert];
  t.teardown(() => served.proc.kill('SIGKILL'));

  // TLS below 1.2 is refused.
  const old = await postJson(
    served.port,
    '/validate',
    withUid('tls11'),
    cas,
    new Agent({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }),
  ).catch((e: Error) => e);
  t.ok(old instanceof Error, 'TLS 1.1 handshake fails');

  const first = await postJson(served.port, '/validate', withUid('u-1'), cas);
  t.equal(first.status, 200);
  t.match(JSON.parse(first.body), { response: { uid: 'u-1', allowed: false } });

  // Rotate: the new certificate comes from another CA; requests keep working throughout.
  const ca2 = await generateCa('meshguard rotated CA', 1);
  cas.push(ca2.cert);
  let failures = 0;
  let rotated = false;
  const load = (async () => {
    for (let i = 0; i < 400 && !rotated; i++) {
      const a = await postJson(served.port, '/validate', withUid(`r-${i}`), cas).catch(() => null);
      if (a?.status !== 200) failures++;
      if (a?.issuer === 'meshguard rotated CA') rotated = true;
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  await writeServingPair(served.dir, ca2);
  await load;
  t.ok(rotated, 'new connections get the rotated certificate');
  t.equal(failures, 0, 'no failed request or handshake during rotation');

  // Configuration file change: takes effect without a restart; an invalid one is refused.
  writeFileSync(configFile, 'mode: warn\n');
  let allowed = false;
  for (let i = 0; i < 100 && !allowed; i++) {
    allowed = JSON.parse((await postJson(served.port, '/validate', withUid('c'), cas)).body).response.allowed;
    if (!allowed) await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(allowed, 'mode: warn took effect');
  writeFileSync(configFile, 'mode: [\n');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(
    JSON.parse((await postJson(served.port, '/validate', withUid('c2'), cas)).body).response.allowed,
    true,
    'last good configuration stays',
  );
  t.ok(
    served.logs.some((l) => l.msg === 'configuration refused; the last good one stays in force'),
    'the refusal is logged',
  );

  // SIGTERM while 60 requests are in flight: every one is answered, then the process exits 0.
  const agent = new Agent({ keepAlive: true, maxSockets: 60 });
  const burst = Array.from({ length: 60 }, (_, i) => postJson(served.port, '/validate', withUid(`b-${i}`), cas, agent));
  served.proc.kill('SIGTERM');
  const answers = await Promise.all(burst.map((p) => p.catch((e: Error) => e)));
  const answered = answers.filter(
    (a) => !(a instanceof Error) && a.status === 200 && JSON.parse(a.body).response.uid.startsWith('b-'),
  );
  t.equal(answered.length, 60, 'every in-flight request answered');
  t.equal(await served.exited, 0, 'exit code 0');
  const after = await postJson(served.port, '/validate', withUid('late'), cas).catch((e: NodeJS.ErrnoException) => e);
  t.match(after, { code: 'ECONNREFUSED' }, 'new connections refused after shutdown');
  agent.destroy();
});

t.test('--cluster-state: a recorded cluster decides, as a live one would', async (t) => {
  const pod = readFileSync(
    new URL('fixtures/reviews/pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json', import.meta.url),
    'utf8',
  );
  const patchOf = (body: string) => {
    const r = JSON.parse(body).response as { patch?: string; warnings?: string[] };
    return { ops: r.patch ? JSON.parse(Buffer.from(r.patch, 'base64').toString()) : [], warnings: r.warnings };
  };
  // Without it, cluster lookups are off: meshguard cannot tell whether Istio injects the pod, and says so.
  const off = await startServe([]);
  t.teardown(() => off.proc.kill('SIGKILL'));
  const unknown = patchOf((await postJson(off.port, '/mutate', pod, [off.ca.cert])).body);
  t.same(unknown.ops, [], 'no patch without the namespace');
  t.match(unknown.warnings, [/cannot tell whether Istio injects this pod: .*--cluster-state/]);

  // examples/faq: shop labelled for injection, the FAQs' Istio 1.11 (classic sidecars, tcpSocket probes not rewritten).
  const served = await startServe(['--cluster-state', join(packageRoot, 'examples', 'faq')]);
  t.teardown(() => served.proc.kill('SIGKILL'));
  const known = patchOf((await postJson(served.port, '/mutate', pod, [served.ca.cert])).body);
  t.same(
    known.ops.map((op: { path: string }) => op.path),
    [
      '/metadata/annotations/proxy.istio.io~1config',
      '/metadata/annotations/traffic.sidecar.istio.io~1excludeInboundPorts',
    ],
    'hold and the probe port, as on the FAQs’ mesh',
  );
  const profile = served.logs.find((l) => l.msg === 'mesh profile in force');
  t.match(profile, { mesh: { istioVersion: '1.11' } }, "the mesh profile comes from the recorded Istio's objects");
});
