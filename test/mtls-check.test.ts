// `meshguard check` on the mTLS trap, from manifests alone: the cluster view is built from the
// inputs (the namespace's injection label, the PeerAuthentication, the Service, its workloads and
// the rule). Apart from cli.test.ts, whose many processes take most of a file's time limit.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot } from '../src/paths.js';

const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(packageRoot, 'src/cli.ts'), ...args], {
    encoding: 'utf8',
    cwd: packageRoot,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

t.test('check: a TLS setting that breaks STRICT mTLS, from the manifests alone', async (t) => {
  // The cluster view is built from the inputs: the namespace's injection label, the
  // PeerAuthentication, the Service, its workloads and the rule.
  const manifests = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews, track: mesh}}
  template:
    metadata: {labels: {app: reviews, track: mesh}}
    spec: {containers: [{name: app, image: app, ports: [{name: http, containerPort: 9080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-node, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews, track: node}}
  template:
    metadata: {labels: {app: reviews, track: node}}
    spec: {hostNetwork: true, containers: [{name: app, image: app, ports: [{name: http, containerPort: 9080}]}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec: {host: reviews, trafficPolicy: {tls: {mode: DISABLE}}}
`;
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-mtls-'));
  writeFileSync(join(dir, 'shop.yaml'), manifests);
  const r = cli(['check', '--no-diff', dir]);
  t.equal(r.code, 1, r.err);
  t.match(
    r.out,
    /DestinationRule shop\/reviews\n {2}deny {3}meshguard mtls-conflict: tls DISABLE sends plain text to Service shop\/reviews:9080, where PeerAuthentication istio-system\/default is STRICT/,
  );
  t.match(
    r.out,
    /PeerAuthentication istio-system\/default\n {2}warn {3}meshguard mtls-conflict: makes Service shop\/reviews:9080 STRICT, where DestinationRule shop\/reviews's tls DISABLE/,
  );
  t.match(
    r.out,
    /Service shop\/reviews\n {2}warn {3}meshguard mtls-conflict: port 9080 reaches pods outside the mesh \(Deployment reviews-node: hostNetwork\) and STRICT ones \(Deployment reviews/,
  );
});
