#!/usr/bin/env bash
# Makes sure Helm 4 is available for the chart's test (test/integration/helm-chart.test.ts) and prints its path on
# the last line as HELM=PATH. Looked up like kube-apiserver (scripts/kube-assets.sh):
#   HELM                an explicit binary path first (a wrong one is an error);
#   PATH                a `helm` whose version is 4.x;
#   the cache           ${CANARY_CACHE_DIR:-~/.cache/temporal-canary}/helm/<version>/helm, outside the repo;
#   else built once     from the Go module proxy (helm.sh/helm/v4/cmd/helm at HELM_VERSION) into that cache folder.
# CANARY_HELM_NO_BUILD=1 fails instead of building. test/integration/helm-chart.test.ts runs this in its beforeAll
# (harness/helm.ts), so only that test pays for a cold build, never `npm run demo`.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
CACHE="${CANARY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/temporal-canary}"

die() {
  echo "helm: $*" >&2
  exit 1
}
log() { echo "helm: $*" >&2; }

is_helm4() { "$1" version --short 2>/dev/null | grep -q '^v4\.'; }

find_helm() {
  if [[ -n "${HELM:-}" ]]; then
    [[ -f "$HELM" && -x "$HELM" ]] || die "HELM=$HELM is not an executable file; fix or unset HELM"
    is_helm4 "$HELM" || die "HELM=$HELM is not Helm 4 ($("$HELM" version --short 2>&1 | head -n1)); the chart's test needs Helm 4"
    echo "$HELM"
    return
  fi
  if command -v helm >/dev/null 2>&1 && is_helm4 "$(command -v helm)"; then
    command -v helm
    return
  fi
  if [[ -x "$CACHE/helm/$HELM_VERSION/helm" ]]; then
    echo "$CACHE/helm/$HELM_VERSION/helm"
  fi
}

build_helm() {
  local out="$CACHE/helm/$HELM_VERSION" work
  command -v go >/dev/null 2>&1 || die "needs Go to build Helm $HELM_VERSION; or set HELM to a Helm 4 binary"
  mkdir -p "$out"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  log "building Helm $HELM_VERSION from the Go module proxy into $out (one time)"
  (
    cd "$work"
    go mod init canary.local/helm-build >/dev/null 2>&1
    GOFLAGS=-mod=mod go get "helm.sh/helm/v4@$HELM_VERSION" >/dev/null 2>&1 || GOFLAGS=-mod=mod go get "helm.sh/helm/v4@$HELM_VERSION"
    # Stamp the version, so `helm version` (and the Helm 4 check above) reads it.
    local ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out/helm.partial" helm.sh/helm/v4/cmd/helm
  ) || die "building Helm $HELM_VERSION failed (see above); or set HELM to a Helm 4 binary"
  mv "$out/helm.partial" "$out/helm"
  log "built $out/helm ($(du -m "$out/helm" | cut -f1) MiB)"
}

helm="$(find_helm)"
if [[ -z "$helm" && -n "${CANARY_HELM_NO_BUILD:-}" ]]; then
  die "Helm $HELM_VERSION is not built yet (CANARY_HELM_NO_BUILD is set); run bash scripts/helm.sh once, or set HELM"
fi
if [[ -z "$helm" ]]; then
  # One build at a time: a second caller waits for the first one's build.
  mkdir -p "$CACHE/helm"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/helm/.build-$HELM_VERSION.lock"
    flock 9 || die "could not lock $CACHE/helm/.build-$HELM_VERSION.lock"
  fi
  helm="$(find_helm)"
  if [[ -z "$helm" ]]; then
    build_helm
    helm="$(find_helm)"
  fi
  exec 9>&-
fi
[[ -n "$helm" ]] || die "helm not found after the build"
echo "HELM=$helm"
