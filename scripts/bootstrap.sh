#!/usr/bin/env bash
# Set up everything `make test` and `make demo` need, idempotently:
#   1. Debian packages for the lab (only when running as root and something is missing);
#   2. .venv with Python 3.11 and the pinned lock file (requirements/requirements.lock);
#   3. the dependency collections, unzipped from the pinned `ansible` wheel (Galaxy is unreachable);
#   4. Pebble 2.10 from Debian sid, extracted (not installed) for ARI, profiles and `replaces`;
#   5. a scratch HOME for ansible-test with the get-pip stub it needs offline.
# Each step leaves a stamp keyed by its inputs, so a second run does nothing and takes about a second.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build="$here/.build"
mkdir -p "$build"

log() { printf '[bootstrap] %s\n' "$*"; }

# Versions pinned here are the single source of truth for the lab binaries and the collection bundle.
ANSIBLE_BUNDLE_VERSION=12.3.0          # ships community.crypto 3.0.5, community.dns 3.4.1, amazon.aws 10.1.2
PEBBLE_SID_VERSION=2.10.0+ds1-2
UV_VERSION=0.13.9
DEB_PACKAGES=(pebble bind9 bind9-utils bind9-dnsutils pdns-server pdns-backend-sqlite3 sqlite3 openssl rsync unzip lego)
COLLECTIONS=(community/crypto community/dns community/general amazon/aws ansible/utils ansible/netcommon ansible/posix awx/awx)

# --- 1. Debian packages ---------------------------------------------------------------------------
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing Debian packages: ${missing[*]}"
    log "run as root, or install them with: sudo apt-get install ${missing[*]}"
    exit 1
  fi
fi

# --- 2. Python venv ---------------------------------------------------------------------------------
py=$(command -v python3.11 || true)
if [ -z "$py" ]; then
  log "Python 3.11 is required (ansible-core 2.19 is the newest release that supports it); python3.11 not found on PATH"
  exit 1
fi
lock_sum=$( (cat requirements/requirements.lock; echo "$UV_VERSION compile-bytecode") | sha256sum | cut -c1-16)
if [ "$(cat .venv/.stamp 2>/dev/null)" != "$lock_sum" ]; then
  log "creating .venv from requirements/requirements.lock"
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
  # Compile bytecode at install time: tests run with PYTHONDONTWRITEBYTECODE, and the Genesys SDK alone has
  # about 6,600 modules that would otherwise be compiled on every import.
  .venv/bin/uv pip install -q --compile-bytecode -p .venv/bin/python -r requirements/requirements.lock
  echo "$lock_sum" > .venv/.stamp
fi

# --- 3. Collections from the ansible wheel ------------------------------------------------------------
coll="$build/collections"
if [ "$(cat "$coll/.stamp" 2>/dev/null)" != "$ANSIBLE_BUNDLE_VERSION ${COLLECTIONS[*]}" ]; then
  log "unpacking dependency collections from ansible==$ANSIBLE_BUNDLE_VERSION"
  mkdir -p "$build/wheels"
  wheel="$build/wheels/ansible-$ANSIBLE_BUNDLE_VERSION-py3-none-any.whl"
  if [ ! -f "$wheel" ]; then
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps \
      -d "$build/wheels" "ansible==$ANSIBLE_BUNDLE_VERSION"
  fi
  rm -rf "$coll" && mkdir -p "$coll"
  patterns=()
  for c in "${COLLECTIONS[@]}"; do patterns+=("ansible_collections/$c/*"); done
  unzip -q "$wheel" "${patterns[@]}" -d "$coll"
  echo "$ANSIBLE_BUNDLE_VERSION ${COLLECTIONS[*]}" > "$coll/.stamp"
fi
# --- 2b. The benchmark's comparison tools (make bench): certbot in its own venv, never in .venv ----------------------
bench_sum=$(sha256sum < requirements/bench.lock | cut -c1-16)
if [ "$(cat "$build/bench-venv/.stamp" 2>/dev/null)" != "$bench_sum" ]; then
  log "creating .build/bench-venv (certbot) from requirements/bench.lock"
  [ -x "$build/bench-venv/bin/python" ] || "$py" -m venv "$build/bench-venv"
  "$build/bench-venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements/bench.lock
  echo "$bench_sum" > "$build/bench-venv/.stamp"
fi

# This checkout, seen as byoc.certificates (a symlink, so edits are live).
mkdir -p "$build/dev/ansible_collections/byoc"
ln -sfn "$here" "$build/dev/ansible_collections/byoc/certificates"

# --- 4. Pebble 2.10 from Debian sid -------------------------------------------------------------------
pebble_dir="$build/pebble-$PEBBLE_SID_VERSION"
if [ ! -x "$pebble_dir/usr/bin/pebble" ]; then
  log "fetching pebble $PEBBLE_SID_VERSION from Debian sid (extracted, not installed)"
  alt="$build/apt-sid"
  mkdir -p "$alt/lists/partial" "$alt/cache/archives/partial" "$alt/parts"
  # Use the Debian mirror this machine is already configured with, switched to sid.
  mirror=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$mirror" ] || mirror=$(grep -h -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
  if [ -z "$mirror" ]; then
    log "cannot find a Debian mirror in /etc/apt to fetch pebble $PEBBLE_SID_VERSION from"
    exit 1
  fi
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s sid main\n' "$mirror" > "$alt/sources.list"
  apto=(-o "Dir::Etc::SourceList=$alt/sources.list" -o "Dir::Etc::SourceParts=$alt/parts"
        -o "Dir::State::Lists=$alt/lists" -o "Dir::Cache=$alt/cache" -o "Debug::NoLocking=1")
  apt-get "${apto[@]}" update -qq
  (cd "$alt" && apt-get "${apto[@]}" download "pebble=$PEBBLE_SID_VERSION" >/dev/null)
  rm -rf "$pebble_dir"
  dpkg-deb -x "$alt"/pebble_*.deb "$pebble_dir"
  "$pebble_dir/usr/bin/pebble" -version >/dev/null 2>&1 || true
fi

# --- 5. ansible-test offline -----------------------------------------------------------------------------
# ansible-test bootstraps pip in each sanity venv from a URL that is unreachable here; a stub that uses ensurepip
# stands in for it. The file name follows the pip pin of ansible-test 2.19 (python_requirements.py: pip='24.2').
stub="$build/home/.ansible/test/cache/get_pip_24_2.py"
if [ ! -f "$stub" ]; then
  mkdir -p "$(dirname "$stub")"
  cat > "$stub" <<'PY'
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade"] + args)
PY
fi

log "ready"
