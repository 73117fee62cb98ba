#!/usr/bin/env bash
# Installs the real BitTorrent clients tt's interop tests and benchmark run against
# (python3-libtorrent, aria2, opentracker, transmission-cli), BusyBox (its httpd is the
# web seed server of test/interop/web-seed.test.ts) plus GNU time, from Debian's
# packages, only when missing. Idempotent and non-interactive; fails loudly, never skips.
set -euo pipefail

# package -> a command (or python import) that proves it is installed
declare -A CHECKS=(
  [python3-libtorrent]="/usr/bin/python3 -c 'import libtorrent'"
  [aria2]="command -v aria2c"
  [opentracker]="command -v opentracker"
  [transmission-cli]="command -v transmission-cli"
  [time]="test -x /usr/bin/time"
  [busybox]="busybox httpd --help"
)

missing=()
for pkg in python3-libtorrent aria2 opentracker transmission-cli time busybox; do
  if ! bash -c "${CHECKS[$pkg]}" >/dev/null 2>&1; then missing+=("$pkg"); fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-clients: all clients present"
  exit 0
fi

echo "install-clients: installing ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-clients: ERROR: apt-get not found; install these Debian packages by hand: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "install-clients: ERROR: need root (or passwordless sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

# Keep package scripts from starting system services (opentracker would listen on all interfaces).
POLICY=/usr/sbin/policy-rc.d
policy_created=0
cleanup() {
  if [ "$policy_created" -eq 1 ]; then $SUDO rm -f "$POLICY"; fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  policy_created=1
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -q; then
  echo "install-clients: ERROR: apt-get update failed" >&2
  exit 1
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  echo "install-clients: ERROR: apt-get install ${missing[*]} failed" >&2
  exit 1
fi

# Re-check: a package that installed but does not work is a failure too.
for pkg in "${missing[@]}"; do
  if ! bash -c "${CHECKS[$pkg]}" >/dev/null 2>&1; then
    echo "install-clients: ERROR: $pkg installed but check failed: ${CHECKS[$pkg]}" >&2
    exit 1
  fi
done
echo "install-clients: installed ${missing[*]}"
