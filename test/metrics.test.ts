// The /metrics text, exactly: prom-client prints what meshguard counts (some of it tallied on the
// hot path and handed to prom-client at the scrape), and a scrape moves nothing twice; and what a
// running serve exports about the mesh profile.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createMetrics } from '../src/server/metrics.js';
import { startServe } from './serve-process.js';

t.test('the metrics text for known counts and durations, across two scrapes', async (t) => {
  const m = createMetrics();
  const requests = [
    ['mutate', 'Pod', 'CREATE', 'patched'],
    ['mutate', 'Pod', 'CREATE', 'patched'],
    ['validate', 'DestinationRule', 'CREATE', 'denied'],
    ['mutate', '', '', 'invalid'],
    ['validate', 'other', 'UPDATE', 'allowed'],
  ] as const;
  for (const [endpoint, kind, operation, outcome] of requests) m.countRequest(endpoint, kind, operation, outcome);
  const results = [
    ['hold-application-until-proxy-starts', 'mutate'],
    ['probe-port-exclusion', 'mutate'],
    ['job-sidecar-quit', 'skip'],
    ['destinationrule-placement', 'fail'],
    ['probe-port-exclusion', 'error'],
  ] as const;
  for (const [policy, result] of results) m.countPolicyResult(policy, result);
  const durations = [
    ['mutate', 0.00003],
    ['mutate', 0.0001],
    ['mutate', 0.00017],
    ['validate', 0.0005],
    ['mutate', 0.3],
    ['validate', 7],
    ['mutate', 0.0025],
  ] as const;
  for (const [endpoint, seconds] of durations) m.observeDuration(endpoint, seconds);
  m.configReloads.inc({ result: 'success' });
  m.configGeneration.set(3);
  m.countWarnings('validate', 2);
  const faqMesh = { istioVersion: '1.11', rootNamespace: 'istio-system', revisions: ['default'] };
  m.setMeshProfile(faqMesh);
  t.equal(await m.registry.metrics(), FIRST, 'first scrape');

  m.countRequest('mutate', 'Pod', 'CREATE', 'patched');
  m.countRequest('mutate', 'Pod', 'UPDATE', 'allowed');
  m.countPolicyResult('job-sidecar-quit', 'mutate');
  m.observeDuration('mutate', 0.001);
  m.observeDuration('validate', 0.00025);
  m.countWarnings('mutate', 1);
  // A rediscovery that changes nothing is no change; a new version is one, and replaces the info.
  m.setMeshProfile({ ...faqMesh });
  m.setMeshProfile({ ...faqMesh, istioVersion: '1.30' });
  t.equal(await m.registry.metrics(), SECOND, 'second scrape: the new counts added once');
});

// Written by meshguard as of c534188 (its histogram subclass and tallies); prom-client's text format.
const FIRST = `# HELP meshguard_admission_requests_total Admission requests by endpoint, kind, operation and outcome (allowed, patched, denied, invalid).
# TYPE meshguard_admission_requests_total counter
meshguard_admission_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",outcome="patched"} 2
meshguard_admission_requests_total{endpoint="mutate",kind="",operation="",outcome="invalid"} 1
meshguard_admission_requests_total{endpoint="validate",kind="DestinationRule",operation="CREATE",outcome="denied"} 1
meshguard_admission_requests_total{endpoint="validate",kind="other",operation="UPDATE",outcome="allowed"} 1

# HELP meshguard_policy_results_total Policy results by policy and result (pass, fail, warn, mutate, skip, error).
# TYPE meshguard_policy_results_total counter
meshguard_policy_results_total{policy="hold-application-until-proxy-starts",result="mutate"} 1
meshguard_policy_results_total{policy="probe-port-exclusion",result="mutate"} 1
meshguard_policy_results_total{policy="probe-port-exclusion",result="error"} 1
meshguard_policy_results_total{policy="job-sidecar-quit",result="skip"} 1
meshguard_policy_results_total{policy="destinationrule-placement",result="fail"} 1

# HELP meshguard_admission_duration_seconds Time from a decoded review to its answer.
# TYPE meshguard_admission_duration_seconds histogram
meshguard_admission_duration_seconds_bucket{le="0.0001",endpoint="mutate"} 2
meshguard_admission_duration_seconds_bucket{le="0.00025",endpoint="mutate"} 3
meshguard_admission_duration_seconds_bucket{le="0.0005",endpoint="mutate"} 3
meshguard_admission_duration_seconds_bucket{le="0.001",endpoint="mutate"} 3
meshguard_admission_duration_seconds_bucket{le="0.0025",endpoint="mutate"} 4
meshguard_admission_duration_seconds_bucket{le="0.005",endpoint="mutate"} 4
meshguard_admission_duration_seconds_bucket{le="0.01",endpoint="mutate"} 4
meshguard_admission_duration_seconds_bucket{le="0.025",endpoint="mutate"} 4
meshguard_admission_duration_seconds_bucket{le="0.1",endpoint="mutate"} 4
meshguard_admission_duration_seconds_bucket{le="1",endpoint="mutate"} 5
meshguard_admission_duration_seconds_bucket{le="+Inf",endpoint="mutate"} 5
meshguard_admission_duration_seconds_sum{endpoint="mutate"} 0.3028
meshguard_admission_duration_seconds_count{endpoint="mutate"} 5
meshguard_admission_duration_seconds_bucket{le="0.0001",endpoint="validate"} 0
meshguard_admission_duration_seconds_bucket{le="0.00025",endpoint="validate"} 0
meshguard_admission_duration_seconds_bucket{le="0.0005",endpoint="validate"} 1
meshguard_admission_duration_seconds_bucket{le="0.001",endpoint="validate"} 1
meshguard_admission_duration_seconds_bucket{le="0.0025",endpoint="validate"} 1
meshguard_admission_duration_seconds_bucket{le="0.005",endpoint="validate"} 1
meshguard_admission_duration_seconds_bucket{le="0.01",endpoint="validate"} 1
meshguard_admission_duration_seconds_bucket{le="0.025",endpoint="validate"} 1
meshguard_admission_duration_seconds_bucket{le="0.1",endpoint="validate"} 1
meshguard_admission_duration_seconds_bucket{le="1",endpoint="validate"} 1
meshguard_admission_duration_seconds_bucket{le="+Inf",endpoint="validate"} 2
meshguard_admission_duration_seconds_sum{endpoint="validate"} 7.0005
meshguard_admission_duration_seconds_count{endpoint="validate"} 2

# HELP meshguard_admission_warnings_total Warnings sent in admission answers, by endpoint (at most 20 per answer, the last saying how many more).
# TYPE meshguard_admission_warnings_total counter
meshguard_admission_warnings_total{endpoint="validate"} 2

# HELP meshguard_mesh_profile_changes_total Changes of the mesh profile in force (the Istio the guardrails follow), from discovery or configuration.
# TYPE meshguard_mesh_profile_changes_total counter
meshguard_mesh_profile_changes_total 0

# HELP meshguard_mesh_profile_info The mesh profile in force: 1, labelled with its Istio version and root namespace.
# TYPE meshguard_mesh_profile_info gauge
meshguard_mesh_profile_info{istio_version="1.11",root_namespace="istio-system"} 1

# HELP meshguard_config_reloads_total Configuration changes by result (success, failure).
# TYPE meshguard_config_reloads_total counter
meshguard_config_reloads_total{result="success"} 1

# HELP meshguard_config_generation Generation of the configuration in force; increases with every change that takes effect.
# TYPE meshguard_config_generation gauge
meshguard_config_generation 3
`;

const SECOND = `# HELP meshguard_admission_requests_total Admission requests by endpoint, kind, operation and outcome (allowed, patched, denied, invalid).
# TYPE meshguard_admission_requests_total counter
meshguard_admission_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",outcome="patched"} 3
meshguard_admission_requests_total{endpoint="mutate",kind="",operation="",outcome="invalid"} 1
meshguard_admission_requests_total{endpoint="validate",kind="DestinationRule",operation="CREATE",outcome="denied"} 1
meshguard_admission_requests_total{endpoint="validate",kind="other",operation="UPDATE",outcome="allowed"} 1
meshguard_admission_requests_total{endpoint="mutate",kind="Pod",operation="UPDATE",outcome="allowed"} 1

# HELP meshguard_policy_results_total Policy results by policy and result (pass, fail, warn, mutate, skip, error).
# TYPE meshguard_policy_results_total counter
meshguard_policy_results_total{policy="hold-application-until-proxy-starts",result="mutate"} 1
meshguard_policy_results_total{policy="probe-port-exclusion",result="mutate"} 1
meshguard_policy_results_total{policy="probe-port-exclusion",result="error"} 1
meshguard_policy_results_total{policy="job-sidecar-quit",result="skip"} 1
meshguard_policy_results_total{policy="destinationrule-placement",result="fail"} 1
meshguard_policy_results_total{policy="job-sidecar-quit",result="mutate"} 1

# HELP meshguard_admission_duration_seconds Time from a decoded review to its answer.
# TYPE meshguard_admission_duration_seconds histogram
meshguard_admission_duration_seconds_bucket{le="0.0001",endpoint="mutate"} 2
meshguard_admission_duration_seconds_bucket{le="0.00025",endpoint="mutate"} 3
meshguard_admission_duration_seconds_bucket{le="0.0005",endpoint="mutate"} 3
meshguard_admission_duration_seconds_bucket{le="0.001",endpoint="mutate"} 4
meshguard_admission_duration_seconds_bucket{le="0.0025",endpoint="mutate"} 5
meshguard_admission_duration_seconds_bucket{le="0.005",endpoint="mutate"} 5
meshguard_admission_duration_seconds_bucket{le="0.01",endpoint="mutate"} 5
meshguard_admission_duration_seconds_bucket{le="0.025",endpoint="mutate"} 5
meshguard_admission_duration_seconds_bucket{le="0.1",endpoint="mutate"} 5
meshguard_admission_duration_seconds_bucket{le="1",endpoint="mutate"} 6
meshguard_admission_duration_seconds_bucket{le="+Inf",endpoint="mutate"} 6
meshguard_admission_duration_seconds_sum{endpoint="mutate"} 0.3038
meshguard_admission_duration_seconds_count{endpoint="mutate"} 6
meshguard_admission_duration_seconds_bucket{le="0.0001",endpoint="validate"} 0
meshguard_admission_duration_seconds_bucket{le="0.00025",endpoint="validate"} 1
meshguard_admission_duration_seconds_bucket{le="0.0005",endpoint="validate"} 2
meshguard_admission_duration_seconds_bucket{le="0.001",endpoint="validate"} 2
meshguard_admission_duration_seconds_bucket{le="0.0025",endpoint="validate"} 2
meshguard_admission_duration_seconds_bucket{le="0.005",endpoint="validate"} 2
meshguard_admission_duration_seconds_bucket{le="0.01",endpoint="validate"} 2
meshguard_admission_duration_seconds_bucket{le="0.025",endpoint="validate"} 2
meshguard_admission_duration_seconds_bucket{le="0.1",endpoint="validate"} 2
meshguard_admission_duration_seconds_bucket{le="1",endpoint="validate"} 2
meshguard_admission_duration_seconds_bucket{le="+Inf",endpoint="validate"} 3
meshguard_admission_duration_seconds_sum{endpoint="validate"} 7.00075
meshguard_admission_duration_seconds_count{endpoint="validate"} 3

# HELP meshguard_admission_warnings_total Warnings sent in admission answers, by endpoint (at most 20 per answer, the last saying how many more).
# TYPE meshguard_admission_warnings_total counter
meshguard_admission_warnings_total{endpoint="validate"} 2
meshguard_admission_warnings_total{endpoint="mutate"} 1

# HELP meshguard_mesh_profile_changes_total Changes of the mesh profile in force (the Istio the guardrails follow), from discovery or configuration.
# TYPE meshguard_mesh_profile_changes_total counter
meshguard_mesh_profile_changes_total 1

# HELP meshguard_mesh_profile_info The mesh profile in force: 1, labelled with its Istio version and root namespace.
# TYPE meshguard_mesh_profile_info gauge
meshguard_mesh_profile_info{istio_version="1.30",root_namespace="istio-system"} 1

# HELP meshguard_config_reloads_total Configuration changes by result (success, failure).
# TYPE meshguard_config_reloads_total counter
meshguard_config_reloads_total{result="success"} 1

# HELP meshguard_config_generation Generation of the configuration in force; increases with every change that takes effect.
# TYPE meshguard_config_generation gauge
meshguard_config_generation 3
`;

t.test('serve exports the mesh profile in force and counts its changes', async (t) => {
  const free = createServer();
  await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
  const port = (free.address() as { port: number }).port;
  await new Promise((resolve) => free.close(resolve));
  const config = join(mkdtempSync(join(tmpdir(), 'meshguard-metrics-')), 'config.yaml');
  writeFileSync(config, 'mesh: {istioVersion: "1.11"}\n');
  const served = await startServe(['--metrics-port', String(port), '--config', config]);
  t.teardown(() => served.proc.kill('SIGKILL'));
  const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const first = await scrape();
  t.match(first, /\nmeshguard_mesh_profile_info\{istio_version="1.11",root_namespace="istio-system"\} 1\n/);
  t.match(first, /\nmeshguard_mesh_profile_changes_total 0\n/);
  // The configuration file is reloaded when it changes; its mesh: section is part of the profile.
  writeFileSync(config, 'mesh: {istioVersion: "1.20"}\n');
  let text = first;
  for (let i = 0; i < 100 && !text.includes('istio_version="1.20"'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    text = await scrape();
  }
  t.match(text, /\nmeshguard_mesh_profile_info\{istio_version="1.20",root_namespace="istio-system"\} 1\n/);
  t.notMatch(text, /istio_version="1.11"/, 'the old profile is gone');
  t.match(text, /\nmeshguard_mesh_profile_changes_total 1\n/);
});
