#!/usr/bin/env bash
# `npm run test:e2e`: build (or reuse) the real components, say which versions they are, build
# meshguard, then run only the end-to-end tap tests against them.
# Extra arguments go to tap, e.g. `npm run test:e2e -- test/e2e/cluster.test.ts`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

printf '==> provisioning (test/e2e/provision.sh)\n'
start=${SECONDS}
bin="$(bash test/e2e/provision.sh | tail -n 1)"
printf '==> components ready in %d s: %s\n' "$((SECONDS - start))" "${bin}"
export MESHGUARD_E2E_BIN="${bin}"
# kubectl and helm as a user would run them; the tests also call them by these names.
export PATH="${bin}:${PATH}"

# One line per real component, from the binaries themselves.
first() { head -n 1 | tr -d '\r'; }
printf 'e2e: kube-apiserver %s\n' "$(kube-apiserver --version | first | sed 's/^Kubernetes //')"
printf 'e2e: kube-controller-manager %s\n' "$(kube-controller-manager --version | first | sed 's/^Kubernetes //')"
printf 'e2e: etcd %s\n' "$(etcd --version | first | sed 's/^etcd Version: //')"
printf 'e2e: kubectl %s\n' "$(kubectl version --client | first | sed 's/^Client Version: //')"
printf 'e2e: helm %s\n' "$(helm version --short | first)"
printf 'e2e: istiod %s\n' "$(pilot-discovery version --short 2>/dev/null | first | sed 's/^client version: //')"
printf 'e2e: node %s\n' "$(node --version)"

printf '==> npm run build\n'
npm run build

# package.json's "tap" config is for the unit suite: it includes test/**/*.test.ts and excludes
# test/e2e/**. On the command line, --include replaces the configured list and --exclude ''
# replaces the e2e exclusion with a pattern that matches nothing. Each test file starts its own
# control plane and waits on controllers: 5 minutes per file.
printf '==> tap (e2e)\n'
exec npx tap --include 'test/e2e/**/*.test.ts' --exclude '' --timeout=300 "$@"
