#!/usr/bin/env bash
# Build the real components of meshguard's end-to-end tests from their Go modules (DESIGN.md
# section 6) into a cache outside the repository, and reuse them when present:
#
#   kubernetes  kube-apiserver, kube-controller-manager, kubectl  (test/e2e/components/kubernetes)
#   etcd        etcd                                              (test/e2e/components/etcd)
#   helm        helm (Helm 4)                                     (test/e2e/components/helm)
#   istio       pilot-discovery (istiod) and Istio's Helm charts  (test/e2e/components/istio)
#
# Each component is a small Go module of its own (their dependency graphs disagree); its go.mod
# pins the version. A component's cache directory is keyed by the hash of its go.mod, go.sum and
# this script's build recipe, so a version bump rebuilds it and nothing else.
#
# On success the last line of stdout is the directory that holds (symlinks to) every binary, and
# istio-charts/ (Istio's charts from the same module); run.sh exports it as MESHGUARD_E2E_BIN.
#
#   MESHGUARD_E2E_CACHE  cache root (default ~/.cache/meshguard/e2e)
#   GOFLAGS, GOPROXY, GOMODCACHE  as usual for go; the Go build cache is kept in the cache root.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly COMPONENTS="${SCRIPT_DIR}/components"
CACHE="${MESHGUARD_E2E_CACHE:-${HOME}/.cache/meshguard/e2e}"
readonly CACHE
export GOCACHE="${GOCACHE:-${CACHE}/go-build}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -trimpath"
# The modules say which Go they need (go 1.26); an older go fetches that toolchain from the module proxy.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

step() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'provision.sh: error: %s\n' "$*" >&2
  exit 1
}

command -v go >/dev/null 2>&1 || die "go not found (Go >= 1.26 is needed to build the components)"
command -v openssl >/dev/null 2>&1 || die "openssl not found (the tests make certificates with it)"

# The version a module requires, from its go.mod ("require path version").
required() { awk -v m="$2" '($1 == m || ($1 == "require" && $2 == m)) { v = ($1 == m) ? $2 : $3 } END { print v }' "$1/go.mod"; }

KUBE_VERSION="$(required "${COMPONENTS}/kubernetes" k8s.io/kubernetes)"
HELM_VERSION="$(required "${COMPONENTS}/helm" helm.sh/helm/v4)"
ISTIO_VERSION="$(required "${COMPONENTS}/istio" istio.io/istio)"
readonly KUBE_VERSION HELM_VERSION ISTIO_VERSION
[[ "${KUBE_VERSION}" =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "cannot read the k8s.io/kubernetes version from its go.mod"
KUBE_MAJOR="${BASH_REMATCH[1]}"
KUBE_MINOR="${BASH_REMATCH[2]}"
readonly KUBE_MAJOR KUBE_MINOR

# What `--version` prints comes from these variables, set by each project's own release build.
kube_ldflags() {
  local pkg flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${KUBE_MAJOR} -X ${pkg}.gitMinor=${KUBE_MINOR}"
    flags+=" -X ${pkg}.gitTreeState=clean"
  done
  printf '%s' "${flags}"
}
helm_ldflags() { printf '%s' "-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v4/internal/version.gitTreeState=clean"; }
# Istio tags no module versions; the pseudo-version names the commit.
istio_ldflags() {
  printf '%s' "-s -w -X istio.io/istio/pkg/version.buildVersion=${ISTIO_VERSION} -X istio.io/istio/pkg/version.buildStatus=Clean"
  printf '%s' " -X istio.io/istio/pkg/version.buildGitRevision=${ISTIO_VERSION##*-}"
}

# component: binaries (package paths), ldflags
declare -A PACKAGES=(
  [kubernetes]="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl"
  [etcd]="go.etcd.io/etcd/server/v3"
  [helm]="helm.sh/helm/v4/cmd/helm"
  [istio]="istio.io/istio/pilot/cmd/pilot-discovery"
)
declare -A LDFLAGS=(
  [kubernetes]="$(kube_ldflags)"
  [etcd]="-s -w"
  [helm]="$(helm_ldflags)"
  [istio]="$(istio_ldflags)"
)
# The binary name of a package: its last path element (etcd's main is the module root).
binary_name() {
  case "$1" in
    go.etcd.io/etcd/server/v3) printf 'etcd' ;;
    *) printf '%s' "${1##*/}" ;;
  esac
}

key_of() {
  local c="$1"
  {
    cat "${COMPONENTS}/${c}/go.mod" "${COMPONENTS}/${c}/go.sum"
    printf '%s\n' "${PACKAGES[${c}]}" "${LDFLAGS[${c}]}" "$(go env GOVERSION)"
  } | sha256sum | cut -c1-16
}

build() {
  local c="$1" dir="$2" start=${SECONDS} pkg
  step "building ${c} (${PACKAGES[${c}]}) into ${dir}"
  rm -rf "${dir}.tmp"
  mkdir -p "${dir}.tmp/bin"
  local -a pkgs
  read -r -a pkgs <<<"${PACKAGES[${c}]}"
  local out="${dir}.tmp/bin/"
  ((${#pkgs[@]} == 1)) && out+="$(binary_name "${pkgs[0]}")"
  (cd "${COMPONENTS}/${c}" && go build -ldflags "${LDFLAGS[${c}]}" -o "${out}" "${pkgs[@]}") >&2
  if [[ "${c}" == istio ]]; then
    # Istio's own charts (istio-discovery's injector webhooks), from the same module version.
    local src
    src="$(cd "${COMPONENTS}/istio" && go list -m -f '{{.Dir}}' istio.io/istio)"
    cp -r "${src}/manifests/charts" "${dir}.tmp/istio-charts"
    chmod -R u+w "${dir}.tmp/istio-charts"
  fi
  for pkg in ${PACKAGES[${c}]}; do
    [[ -x "${dir}.tmp/bin/$(binary_name "${pkg}")" ]] || die "the ${c} build did not produce $(binary_name "${pkg}")"
  done
  printf '%s\n' "$((SECONDS - start))" >"${dir}.tmp/build-seconds"
  rm -rf "${dir}"
  mv "${dir}.tmp" "${dir}"
  step "${c} built in $((SECONDS - start)) s"
}

mkdir -p "${CACHE}"
# Serialise concurrent runs (several worktrees share the cache).
exec 9>"${CACHE}/.provision.lock"
flock 9

combined=""
declare -A DIRS=()
for c in kubernetes etcd helm istio; do
  key="$(key_of "${c}")"
  DIRS[${c}]="${CACHE}/${c}-${key}"
  combined+="${key}"
  if [[ -f "${DIRS[${c}]}/build-seconds" ]]; then
    step "${c}: cached in ${DIRS[${c}]} (built in $(cat "${DIRS[${c}]}/build-seconds") s)"
  else
    build "${c}" "${DIRS[${c}]}"
  fi
done

# One directory with every binary, for PATH and the tests.
bin="${CACHE}/bin-$(printf '%s' "${combined}" | sha256sum | cut -c1-16)"
if [[ ! -d "${bin}" ]]; then
  rm -rf "${bin}.tmp"
  mkdir -p "${bin}.tmp"
  for c in kubernetes etcd helm istio; do
    for f in "${DIRS[${c}]}/bin/"*; do ln -s "${f}" "${bin}.tmp/${f##*/}"; done
  done
  ln -s "${DIRS[istio]}/istio-charts" "${bin}.tmp/istio-charts"
  mv "${bin}.tmp" "${bin}"
fi
printf '%s\n' "${bin}"
