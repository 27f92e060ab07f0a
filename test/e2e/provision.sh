#!/usr/bin/env bash
# Provision a real kube-apiserver + kube-controller-manager (Kubernetes v1.20.2, built from
# Debian bookworm's `kubernetes` source package) and etcd 3.4 for meshguard's end-to-end tests.
# See DESIGN.md section 6. Idempotent: once the binaries are cached this is a fast no-op.
#
# Also builds test/e2e/helm-render (a re-implementation of `helm template` from Debian's Go
# packages, see its main.go) into the same bin directory, rebuilt whenever main.go changes.
#
#   MESHGUARD_KUBE_CACHE  cache directory (default: ~/.cache/meshguard/kubernetes-v1.20.2);
#                         the binaries end up in $MESHGUARD_KUBE_CACHE/bin.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly HELM_RENDER_SRC="${SCRIPT_DIR}/helm-render"
readonly GOCODE="/usr/share/gocode"

readonly KUBE_VERSION="v1.20.2"
readonly SRC_PACKAGE="kubernetes"
readonly SRC_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
readonly SUITE="bookworm"
readonly GO_BIN_DIR="/usr/lib/go-1.19/bin"
readonly REFLECT2_SRC="/usr/share/gocode/src/github.com/modern-go/reflect2"
readonly KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"
readonly APT_PACKAGES=(
  golang-1.19-go
  golang-github-modern-go-reflect2-dev
  etcd-server
  rsync
  make
  openssl
  ca-certificates
  debian-archive-keyring
  # helm-render: Helm's template engine is text/template + these libraries.
  golang-github-masterminds-sprig-dev
  golang-github-masterminds-semver-dev
  golang-github-mitchellh-copystructure-dev
  golang-github-xeipuuv-gojsonschema-dev
  golang-k8s-sigs-yaml-dev
  golang-gopkg-yaml.v2-dev
  golang-gopkg-yaml.v3-dev
)

CACHE="${MESHGUARD_KUBE_CACHE:-${HOME}/.cache/meshguard/kubernetes-${KUBE_VERSION}}"
readonly CACHE
readonly BIN_DIR="${CACHE}/bin"
readonly WORK_DIR="${CACHE}/work"

step() { printf '==> %s\n' "$*"; }
die() { printf 'provision.sh: error: %s\n' "$*" >&2; exit 1; }
# Print a command (shell-quoted) and run it. Arguments are passed through as an array: nothing is
# ever re-parsed by a shell.
run() {
  printf '    $'
  printf ' %q' "$@"
  printf '\n'
  "$@"
}

find_etcd() {
  local candidate
  for candidate in "${MESHGUARD_ETCD:-}" /usr/bin/etcd "$(command -v etcd 2>/dev/null || true)"; do
    if [[ -n "${candidate}" && -x "${candidate}" ]]; then
      printf '%s\n' "${candidate}"
      return 0
    fi
  done
  return 1
}

binary_ok() {
  local bin="$1" out
  [[ -x "${bin}" ]] || return 1
  out="$("${bin}" --version 2>/dev/null)" || return 1
  [[ "${out}" == *" ${KUBE_VERSION}" ]]
}

# helm-render is current when the checksum of its source recorded at build time still matches.
helm_render_sum() { sha256sum "${HELM_RENDER_SRC}/main.go" | cut -d' ' -f1; }
helm_render_ok() {
  [[ -x "${BIN_DIR}/helm-render" && -f "${BIN_DIR}/helm-render.sha256" ]] \
    && [[ "$(cat "${BIN_DIR}/helm-render.sha256")" == "$(helm_render_sum)" ]]
}

cached_ok() {
  binary_ok "${BIN_DIR}/kube-apiserver" \
    && binary_ok "${BIN_DIR}/kube-controller-manager" \
    && helm_render_ok \
    && find_etcd >/dev/null \
    && command -v openssl >/dev/null 2>&1 # cluster.ts generates the serving certificate with it
}

report_ok() {
  local etcd_bin
  etcd_bin="$(find_etcd)"
  step "cached and working: ${BIN_DIR}/kube-apiserver, ${BIN_DIR}/kube-controller-manager (${KUBE_VERSION}), ${BIN_DIR}/helm-render; etcd: ${etcd_bin} ($("${etcd_bin}" --version 2>/dev/null | head -n1))"
}

# Build helm-render in GOPATH mode against Debian's Go sources (no module proxy is reachable).
build_helm_render() {
  local sum start=${SECONDS}
  sum="$(helm_render_sum)"
  step "building ${BIN_DIR}/helm-render from ${HELM_RENDER_SRC}/main.go (sha256 ${sum:0:12})"
  run mkdir -p "${BIN_DIR}"
  (
    cd "${HELM_RENDER_SRC}"
    run env -u GOFLAGS -u GOPATH -u GO111MODULE \
      "PATH=${GO_BIN_DIR}:${PATH}" \
      GO111MODULE=off "GOPATH=${GOCODE}" \
      "GOCACHE=${CACHE}/helm-render-gocache" \
      CGO_ENABLED=0 GOPROXY=off \
      go build -trimpath -o "${BIN_DIR}/helm-render.tmp" .
  )
  run mv -f "${BIN_DIR}/helm-render.tmp" "${BIN_DIR}/helm-render"
  printf '%s\n' "${sum}" >"${BIN_DIR}/helm-render.sha256"
  helm_render_ok || die "helm-render was built but its checksum does not match"
  step "helm-render build took $((SECONDS - start)) s"
}

# ---------------------------------------------------------------------------------------------
# Fast path: nothing to do.
step "checking cache ${CACHE}"
if cached_ok; then
  report_ok
  exit 0
fi

mkdir -p "${CACHE}"
# Serialise concurrent provisioning runs, then re-check (another run may just have finished).
exec 9>"${CACHE}/.provision.lock"
step "taking lock ${CACHE}/.provision.lock"
flock 9
if cached_ok; then
  report_ok
  exit 0
fi

SUDO=()
if [[ "${EUID}" -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is not available: cannot install apt packages"
  SUDO=(sudo)
fi

# ---------------------------------------------------------------------------------------------
step "checking apt packages: ${APT_PACKAGES[*]}"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("${pkg}")
  fi
done
if ((${#missing[@]} > 0)); then
  step "installing missing apt packages: ${missing[*]}"
  run "${SUDO[@]}" apt-get update
  run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
  step "all apt packages present"
fi

ETCD_BIN="$(find_etcd)" || die "etcd not found (expected /usr/bin/etcd from the etcd-server package)"
step "etcd: ${ETCD_BIN} ($("${ETCD_BIN}" --version 2>/dev/null | head -n1))"
[[ -x "${GO_BIN_DIR}/go" ]] || die "Go 1.19 not found at ${GO_BIN_DIR}/go (package golang-1.19-go)"
[[ -d "${REFLECT2_SRC}" ]] || die "${REFLECT2_SRC} missing (package golang-github-modern-go-reflect2-dev)"

helm_render_ok || build_helm_render

if binary_ok "${BIN_DIR}/kube-apiserver" && binary_ok "${BIN_DIR}/kube-controller-manager"; then
  report_ok
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Which Debian mirrors does this machine use? Reuse their hosts for a private deb-src list.
mirror_for_suite() {
  # $1 = suite (e.g. bookworm, bookworm-security). Prints the first matching URI, if any.
  local want="$1"
  local -a files=()
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  local f
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f "${f}" ]] && files+=("${f}")
  done
  ((${#files[@]} > 0)) || return 0
  awk -v want="${want}" '
    function flush() {
      if (is_deb && uris != "" && (" " suites " ") ~ (" " want " ")) { split(uris, u, " "); print u[1]; found = 1; exit }
      is_deb = 0; uris = ""; suites = ""
    }
    FNR == 1 { flush() }
    /^[[:space:]]*#/ { next }
    # one-line format: deb [opts] URI suite components...
    /^[[:space:]]*deb[[:space:]]/ {
      n = split($0, w, /[[:space:]]+/); i = 1
      while (i <= n && w[i] == "") i++
      i++
      if (w[i] ~ /^\[/) { while (i <= n && w[i] !~ /\]$/) i++; i++ }
      if (w[i + 1] == want) { print w[i]; found = 1; exit }
      next
    }
    # deb822 format
    /^[[:space:]]*$/ { flush(); next }
    /^Types:/ { is_deb = ((" " substr($0, 7) " ") ~ / deb /) }
    /^URIs:/ { uris = substr($0, 6) }
    /^Suites:/ { suites = substr($0, 8) }
    END { if (!found) flush() }
  ' "${files[@]}"
}

valid_uri() { [[ "$1" =~ ^https?://[A-Za-z0-9.:/_~+-]+$ ]]; }

MAIN_MIRROR="$(mirror_for_suite "${SUITE}" | head -n1 | sed 's,/*$,,')"
SEC_MIRROR="$(mirror_for_suite "${SUITE}-security" | head -n1 | sed 's,/*$,,')"
valid_uri "${MAIN_MIRROR}" || MAIN_MIRROR="http://deb.debian.org/debian"
valid_uri "${SEC_MIRROR}" || SEC_MIRROR="http://deb.debian.org/debian-security"
step "Debian mirrors for deb-src: ${MAIN_MIRROR} (${SUITE}), ${SEC_MIRROR} (${SUITE}-security)"

# ---------------------------------------------------------------------------------------------
if [[ -e "${WORK_DIR}" ]]; then
  step "removing leftover work dir ${WORK_DIR}"
  run rm -rf "${WORK_DIR}"
fi
run mkdir -p "${WORK_DIR}/apt/lists/partial" "${WORK_DIR}/apt/cache/archives/partial" "${WORK_DIR}/download"

SRC_LIST="${WORK_DIR}/apt/sources.list"
signed_by=""
[[ -f "${KEYRING}" ]] && signed_by="[signed-by=${KEYRING}] "
{
  printf 'deb-src %s%s %s main\n' "${signed_by}" "${MAIN_MIRROR}" "${SUITE}"
  printf 'deb-src %s%s %s main\n' "${signed_by}" "${MAIN_MIRROR}" "${SUITE}-updates"
  printf 'deb-src %s%s %s-security main\n' "${signed_by}" "${SEC_MIRROR}" "${SUITE}"
} >"${SRC_LIST}"
step "private deb-src list ${SRC_LIST}:"
sed 's/^/      /' "${SRC_LIST}"

APT_OPTS=(
  -o "Dir::Etc::SourceList=${SRC_LIST}"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=${WORK_DIR}/apt/lists"
  -o "Dir::Cache=${WORK_DIR}/apt/cache"
)
# apt drops privileges to _apt for downloads, which cannot write under $HOME; we are only
# downloading signed source files into our own directory.
[[ "${EUID}" -eq 0 ]] && APT_OPTS+=(-o "APT::Sandbox::User=root")

step "fetching source package ${SRC_PACKAGE}=${SRC_VERSION}"
run apt-get "${APT_OPTS[@]}" update
(cd "${WORK_DIR}/download" && run apt-get "${APT_OPTS[@]}" source --download-only "${SRC_PACKAGE}=${SRC_VERSION}")

shopt -s nullglob
origs=("${WORK_DIR}/download/${SRC_PACKAGE}_"*.orig.tar.*)
shopt -u nullglob
((${#origs[@]} == 1)) || die "expected exactly one .orig.tar.* in ${WORK_DIR}/download, found ${#origs[@]}"

SRC_DIR="${WORK_DIR}/src"
step "unpacking ${origs[0]##*/}"
run mkdir -p "${SRC_DIR}"
run tar -xf "${origs[0]}" -C "${SRC_DIR}" --strip-components=1 --no-same-owner
[[ -f "${SRC_DIR}/Makefile" && -d "${SRC_DIR}/cmd/kube-apiserver" ]] || die "unexpected source layout in ${SRC_DIR}"

step "replacing vendored github.com/modern-go/reflect2 with Debian's copy (Go >= 1.18 fix)"
run rm -rf "${SRC_DIR}/vendor/github.com/modern-go/reflect2"
run cp -a "${REFLECT2_SRC}" "${SRC_DIR}/vendor/github.com/modern-go/reflect2"

step "building kube-apiserver and kube-controller-manager (takes a few minutes)"
build_start=${SECONDS}
(
  cd "${SRC_DIR}"
  run env -u GOPATH -u GOFLAGS -u GO111MODULE \
    "PATH=${GO_BIN_DIR}:${PATH}" \
    "GOCACHE=${WORK_DIR}/gocache" \
    CGO_ENABLED=0 GOPROXY=off \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" \
    "KUBE_GIT_VERSION=${KUBE_VERSION}" KUBE_GIT_TREE_STATE=clean
)
step "build took $((SECONDS - build_start)) s"

run mkdir -p "${BIN_DIR}"
for b in kube-apiserver kube-controller-manager; do
  built="${SRC_DIR}/_output/bin/${b}"
  [[ -x "${built}" ]] || die "build did not produce ${built}"
  run install -m 0755 "${built}" "${BIN_DIR}/${b}.tmp"
  run mv -f "${BIN_DIR}/${b}.tmp" "${BIN_DIR}/${b}"
  binary_ok "${BIN_DIR}/${b}" || die "${BIN_DIR}/${b} --version does not report ${KUBE_VERSION}"
done

step "removing source tree, downloads and Go build cache"
# The Makefile builds in GOPATH mode below _output/; its files are read-only module-cache style.
chmod -R u+w "${WORK_DIR}" 2>/dev/null || true
run rm -rf "${WORK_DIR}"

cached_ok || die "provisioning finished but the cached binaries do not work"
report_ok
