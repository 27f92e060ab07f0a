#!/usr/bin/env bash
# `npm run test:e2e`: provision the Kubernetes binaries (a fast no-op once cached), build, then
# run only the end-to-end tap tests against real etcd + kube-apiserver + kube-controller-manager.
# Extra arguments go to tap, e.g. `npm run test:e2e -- test/e2e/cluster.test.ts` or `-- --jobs=1`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

printf '==> provisioning (test/e2e/provision.sh)\n'
bash test/e2e/provision.sh

printf '==> npm run build\n'
npm run build

# package.json's "tap" config is for the unit suite: it includes test/**/*.test.ts and excludes
# test/e2e/**. On the command line, --include replaces the configured list and --exclude ''
# replaces the e2e exclusion with a pattern that matches nothing. Each test file starts its own
# control plane (~3-7 s) and may wait on controllers, so allow 5 minutes per file.
printf '==> tap (e2e)\n'
exec npx tap --include 'test/e2e/**/*.test.ts' --exclude '' --timeout=300 "$@"
