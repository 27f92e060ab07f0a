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
# Everything else goes to stderr: what is cached, what is built, and while a build runs a progress
# line at least once a minute.
#
#   provision.sh           build what is missing
#   provision.sh --check   say which Go builds, what is cached, what would be built and whether the
#                          disk has room; build and download nothing (except, on a Go older than
#                          1.21, the toolchain the modules ask for: see below)
#
#   MESHGUARD_E2E_CACHE             cache root (default ~/.cache/meshguard/e2e)
#   MESHGUARD_E2E_PROGRESS_SECONDS  seconds between progress lines (default 60)
#   MESHGUARD_E2E_DOWNLOAD_TIMEOUT  seconds one `go mod download` may take (default 900)
#   MESHGUARD_E2E_DOWNLOAD_TRIES    attempts at it (default 3), MESHGUARD_E2E_RETRY_SECONDS apart
#                                   (default 15, doubled each time)
#   MESHGUARD_E2E_SKIP_DISK_CHECK=1 build even when the disk looks too small
#   GOFLAGS, GOPROXY, GOMODCACHE    as usual for go; the Go build cache is kept in the cache root.
#
# Go: the modules ask for go 1.26. A go of 1.21 or later runs the toolchain they ask for by itself
# (GOTOOLCHAIN=auto, set here: it fetches golang.org/toolchain from the module proxy). An older go
# (Debian 12's golang-go is 1.19) has no toolchain switching and cannot even read their go.mod; it
# can still download a module, so this script fetches that toolchain module with it into the cache
# root and builds with it.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly COMPONENTS="${SCRIPT_DIR}/components"
CACHE="${MESHGUARD_E2E_CACHE:-${HOME}/.cache/meshguard/e2e}"
readonly CACHE
export GOCACHE="${GOCACHE:-${CACHE}/go-build}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -trimpath"
# The environment beats go.env and `go env -w`, where some installs set GOTOOLCHAIN=local.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
readonly COMPONENT_NAMES=(kubernetes etcd helm istio)

step() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'provision.sh: error: %s\n' "$*" >&2
  exit 1
}

# --- which Go ------------------------------------------------------------------------------------

# The newest go line of the components' go.mod files: the toolchain they need.
wanted_go() { awk '$1 == "go" { print $2 }' "${COMPONENTS}"/*/go.mod | sort -V | tail -n 1; }

# "1.19.8" from `go version` ("go version go1.19.8 linux/amd64"); every go prints it this way.
go_release() { (cd / && go version) | awk '{ sub(/^go/, "", $3); print $3 }'; }

# Minor version of a release: 19 for 1.19.8 and 1.19rc1; 999 for a development build ("devel").
minor_of() {
  if [[ "$1" =~ ^1\.([0-9]+) ]]; then printf '%s' "${BASH_REMATCH[1]}"; else printf '999'; fi
}

# Runs "$@" in directory $1 with stderr appended to file $2 ("-": left as it is). Meant to be run
# in the background (by with_progress): exec makes the background job the command itself, which
# a signal then reaches.
run_in() {
  local dir="$1" err="$2"
  shift 2
  cd "${dir}" || exit 1
  [[ "${err}" == - ]] && exec "$@"
  exec "$@" 2>>"${err}"
}

# Makes `go` a toolchain that can build the components: with go >= 1.21, go itself switches
# (GOTOOLCHAIN=auto); with an older go, the toolchain module is fetched with it and put first on PATH.
ensure_go() {
  local want have
  want="$(wanted_go)"
  command -v go >/dev/null 2>&1 ||
    die "go not found. Install any Go: with 1.21 or later go fetches go ${want} itself; an older one (Debian 12's golang-go, 1.19) is enough for this script to fetch it"
  have="$(go_release)"
  if (($(minor_of "${have}") >= 21)); then
    if [[ "${GOTOOLCHAIN}" == local ]] && [[ "$(printf '%s\n%s\n' "${have}" "${want}" | sort -V | head -n 1)" != "${want}" ]]; then
      die "go ${have} is older than the go ${want} the components need, and GOTOOLCHAIN=local forbids fetching it: unset GOTOOLCHAIN (or set it to auto)"
    fi
    step "go ${have} (GOTOOLCHAIN=${GOTOOLCHAIN}: it runs go ${want} or later for the components)"
    return
  fi
  local goos goarch dir
  goos="$(cd / && go env GOOS)"
  goarch="$(cd / && go env GOARCH)"
  dir="${CACHE}/toolchain/go${want}.${goos}-${goarch}"
  if [[ ! -x "${dir}/bin/go" ]]; then
    step "go ${have} predates toolchain switching (Go 1.21): fetching go ${want} with it, as the module golang.org/toolchain"
    mkdir -p "${CACHE}/toolchain"
    local module="golang.org/toolchain@v0.0.1-go${want}.${goos}-${goarch}" json src
    # Outside any module: this go cannot parse the components' go.mod (its `go 1.26.0` line).
    json="$(download_with_retries "toolchain go${want}" "${CACHE}/toolchain" \
      env GO111MODULE=on GOFLAGS=-mod=mod go mod download -json "${module}")" ||
      die "go ${have} could not fetch ${module} from the module proxy ($(cd / && go env GOPROXY)). Install Go 1.21 or later instead (it fetches go ${want} itself), e.g. from https://go.dev/dl, or on Debian 13 its golang-go"
    src="$(printf '%s\n' "${json}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
    [[ -x "${src}/bin/go" || -f "${src}/bin/go" ]] || die "${module}: no bin/go in ${src:-its download}"
    # Module files are extracted read-only and not executable; Go 1.21+ marks them itself.
    rm -rf "${dir}.tmp"
    cp -r "${src}" "${dir}.tmp"
    chmod -R u+w "${dir}.tmp"
    chmod +x "${dir}.tmp/bin/"* "${dir}.tmp/pkg/tool/"*/*
    mv "${dir}.tmp" "${dir}"
  fi
  export PATH="${dir}/bin:${PATH}"
  hash -r
  step "go ${have} is too old (no toolchain switching before 1.21): building with go $(go_release) from ${dir}"
}

# --- progress, downloads, disk --------------------------------------------------------------------

# Runs "$@" in the background and prints a line every MESHGUARD_E2E_PROGRESS_SECONDS while it runs:
# how long, and what `detail` (a function, given the start marker file) says. Returns its status.
with_progress() {
  local label="$1" detail="$2"
  shift 2
  local every="${MESHGUARD_E2E_PROGRESS_SECONDS:-60}" start=${SECONDS} marker pid rc=0 waited
  marker="$(mktemp)"
  "$@" &
  pid=$!
  # Ctrl-C, a kill or an error here must not leave the build running.
  trap 'kill "${pid}" 2>/dev/null || true; rm -f "${marker}"' EXIT
  trap 'exit 130' INT TERM
  while true; do
    for ((waited = 0; waited < every; waited++)); do
      kill -0 "${pid}" 2>/dev/null || break 2
      sleep 1
    done
    kill -0 "${pid}" 2>/dev/null || break
    local elapsed=$((SECONDS - start))
    step "${label}: still running after $((elapsed / 60))m$(printf '%02d' $((elapsed % 60)))s; $("${detail}" "${marker}"); load $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')"
  done
  wait "${pid}" || rc=$?
  trap - EXIT INT TERM
  rm -f "${marker}"
  return "${rc}"
}

# Progress details: modules fetched, packages compiled (from `go build -v`'s log).
modules_detail() {
  local n
  n="$(find "$(go env GOMODCACHE)/cache/download" -name '*.zip' -newer "$1" 2>/dev/null | wc -l)"
  printf '%s module zips downloaded so far' "${n}"
}
BUILD_LOG=""
BUILD_TOTAL=""
packages_detail() {
  local n last
  n="$(grep -c -E '^[A-Za-z0-9._~/-]+$' "${BUILD_LOG}" || true)"
  last="$(grep -E '^[A-Za-z0-9._~/-]+$' "${BUILD_LOG}" | tail -n 1 || true)"
  printf '%s packages compiled%s%s' "${n}" "${BUILD_TOTAL:+ of at most ${BUILD_TOTAL}}" "${last:+, last ${last}}"
}

# `$@` (a go command that downloads), run in directory $2 with a timeout, tried
# MESHGUARD_E2E_DOWNLOAD_TRIES times; its stdout is this function's.
download_with_retries() {
  local label="$1" dir="$2"
  shift 2
  local timeout="${MESHGUARD_E2E_DOWNLOAD_TIMEOUT:-900}" tries="${MESHGUARD_E2E_DOWNLOAD_TRIES:-3}"
  local delay="${MESHGUARD_E2E_RETRY_SECONDS:-15}" attempt rc
  for ((attempt = 1; ; attempt++)); do
    rc=0
    with_progress "${label}: downloading modules" modules_detail run_in "${dir}" - timeout -k 10 "${timeout}" "$@" || rc=$?
    ((rc == 0)) && return 0
    local why="exit ${rc}"
    ((rc == 124 || rc == 137)) && why="no end after ${timeout} s"
    if ((attempt >= tries)); then
      step "${label}: module download failed ${tries} times (last: ${why}); check GOPROXY ($(cd / && go env GOPROXY)) and the network, or raise MESHGUARD_E2E_DOWNLOAD_TIMEOUT"
      return 1
    fi
    step "${label}: module download failed (${why}); retrying in ${delay} s (attempt $((attempt + 1)) of ${tries})"
    sleep "${delay}"
    delay=$((delay * 2))
  done
}

# Disk a cold build of each component takes, in MB: the Go build cache and binaries under the cache
# root, and modules under GOMODCACHE. Measured after a cold build (linux/amd64, go 1.26.8, the
# versions pinned on 2026-12-06; empty caches before): build cache by when each file was written
# (kubernetes, built first, holds the standard library), binaries by du; modules by du of the ones
# each component compiles, plus their zips (a module shared by two components counted for each).
# Together: 7.5 GB under the cache root, 1.6 GB of modules.
declare -A CACHE_MB=([kubernetes]=4100 [etcd]=250 [helm]=1100 [istio]=2200)
declare -A MODULES_MB=([kubernetes]=650 [etcd]=200 [helm]=550 [istio]=650)

# Free MB on the filesystem that holds $1 (or its nearest existing parent), and that filesystem.
free_mb() {
  local dir="$1"
  while [[ ! -e "${dir}" ]]; do dir="$(dirname "${dir}")"; done
  df -Pm "${dir}" | awk 'NR == 2 { print $4 " " $1 }'
}

# Dies before any build when the disk has less room than building `$@` needs (plus 10 %).
check_disk() {
  (($# == 0)) && return 0
  local cache_mb=0 modules_mb=0 c
  for c in "$@"; do
    cache_mb=$((cache_mb + ${CACHE_MB[${c}]}))
    modules_mb=$((modules_mb + ${MODULES_MB[${c}]}))
  done
  local modcache free_cache fs_cache free_mod fs_mod
  modcache="$(cd / && go env GOMODCACHE)"
  read -r free_cache fs_cache <<<"$(free_mb "${CACHE}")"
  read -r free_mod fs_mod <<<"$(free_mb "${modcache}")"
  local gb='{ printf "%.1f GB", $1 / 1024 }'
  local need_cache=$((cache_mb * 11 / 10)) need_mod=$((modules_mb * 11 / 10)) problem=""
  if [[ "${fs_cache}" == "${fs_mod}" ]]; then
    ((free_cache >= need_cache + need_mod)) ||
      problem="needs about $(awk "${gb}" <<<$((need_cache + need_mod))) on ${fs_cache} (${CACHE}: $(awk "${gb}" <<<"${need_cache}") of Go build cache and binaries; ${modcache}: $(awk "${gb}" <<<"${need_mod}") of modules), which has $(awk "${gb}" <<<"${free_cache}") free"
  else
    ((free_cache >= need_cache)) ||
      problem="needs about $(awk "${gb}" <<<"${need_cache}") of Go build cache and binaries on ${fs_cache} (${CACHE}), which has $(awk "${gb}" <<<"${free_cache}") free"
    ((free_mod >= need_mod)) ||
      problem+="${problem:+; and }needs about $(awk "${gb}" <<<"${need_mod}") of modules on ${fs_mod} (${modcache}), which has $(awk "${gb}" <<<"${free_mod}") free"
  fi
  if [[ -z "${problem}" ]]; then
    step "disk: building $* needs about $(awk "${gb}" <<<$((need_cache + need_mod))); $(awk "${gb}" <<<"${free_cache}") free on ${fs_cache}"
    return 0
  fi
  [[ "${MESHGUARD_E2E_SKIP_DISK_CHECK:-}" == 1 ]] && {
    step "disk: building $* ${problem}; going on (MESHGUARD_E2E_SKIP_DISK_CHECK=1)"
    return 0
  }
  die "not enough disk to build $*: it ${problem}. Free some space, or point MESHGUARD_E2E_CACHE and GOMODCACHE at a larger disk (MESHGUARD_E2E_SKIP_DISK_CHECK=1 builds anyway)"
}

# --- the build recipe ------------------------------------------------------------------------------

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
  # Modules first, with a timeout and retries: a stalled proxy shows here, not as a silent build.
  download_with_retries "${c}" "${COMPONENTS}/${c}" go mod download || die "${c}: could not download its modules"
  rm -rf "${dir}.tmp"
  mkdir -p "${dir}.tmp/bin"
  local -a pkgs
  read -r -a pkgs <<<"${PACKAGES[${c}]}"
  local out="${dir}.tmp/bin/"
  ((${#pkgs[@]} == 1)) && out+="$(binary_name "${pkgs[0]}")"
  # -v names each package as it is compiled: the progress lines count them.
  BUILD_LOG="${dir}.tmp/build.log"
  BUILD_TOTAL="$(cd "${COMPONENTS}/${c}" && go list -deps "${pkgs[@]}" 2>/dev/null | wc -l || true)"
  local rc=0
  with_progress "building ${c}" packages_detail run_in "${COMPONENTS}/${c}" "${BUILD_LOG}" \
    go build -v -ldflags "${LDFLAGS[${c}]}" -o "${out}" "${pkgs[@]}" || rc=$?
  if ((rc != 0)); then
    # What went wrong, without the list of packages compiled.
    grep -v -E '^[A-Za-z0-9._~/-]+$' "${BUILD_LOG}" | tail -n 40 >&2 || true
    die "the ${c} build failed (exit ${rc}); its log: ${BUILD_LOG}"
  fi
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

main() {
  local check=false
  case "${1:-}" in
    --check) check=true ;;
    "") ;;
    *) die "unknown argument ${1} (usage: provision.sh [--check])" ;;
  esac
  command -v openssl >/dev/null 2>&1 || die "openssl not found (the tests make certificates with it)"
  mkdir -p "${CACHE}"
  ensure_go

  # Serialise concurrent runs (several worktrees share the cache).
  exec 9>"${CACHE}/.provision.lock"
  if ! flock -n 9; then
    step "another provision.sh holds ${CACHE}/.provision.lock (a build in progress?): waiting for it"
    flock 9
  fi

  local combined="" c key
  local -a missing=()
  declare -gA DIRS=()
  for c in "${COMPONENT_NAMES[@]}"; do
    key="$(key_of "${c}")"
    DIRS[${c}]="${CACHE}/${c}-${key}"
    combined+="${key}"
    if [[ -f "${DIRS[${c}]}/build-seconds" ]]; then
      step "${c}: cached in ${DIRS[${c}]} (built in $(cat "${DIRS[${c}]}/build-seconds") s)"
    else
      missing+=("${c}")
      ${check} && step "${c}: not built yet; would build into ${DIRS[${c}]}"
    fi
  done
  check_disk "${missing[@]}"
  if ${check}; then
    step "check done: ${#missing[@]} of ${#COMPONENT_NAMES[@]} components to build"
    return 0
  fi
  for c in "${missing[@]}"; do build "${c}" "${DIRS[${c}]}"; done

  # One directory with every binary, for PATH and the tests.
  local bin f
  bin="${CACHE}/bin-$(printf '%s' "${combined}" | sha256sum | cut -c1-16)"
  if [[ ! -d "${bin}" ]]; then
    rm -rf "${bin}.tmp"
    mkdir -p "${bin}.tmp"
    for c in "${COMPONENT_NAMES[@]}"; do
      for f in "${DIRS[${c}]}/bin/"*; do ln -s "${f}" "${bin}.tmp/${f##*/}"; done
    done
    ln -s "${DIRS[istio]}/istio-charts" "${bin}.tmp/istio-charts"
    mv "${bin}.tmp" "${bin}"
  fi
  printf '%s\n' "${bin}"
}

# Sourced (by test/provision.test.ts), it only defines the functions.
if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then main "$@"; fi
