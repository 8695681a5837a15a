#!/usr/bin/env bash
# Release checks of byoc.certificates (the `release` test layer, make collection / make docs):
#   collection  ansible-galaxy collection build -> .build/dist/byoc-certificates-<version>.tar.gz
#   importer    galaxy-importer on that tarball (its own venv .build/venv-release from requirements/release.lock:
#               it pins attrs<24, which the main lock cannot take); fails on any error it reports
#   docs        the documentation site with antsibull-docs and Sphinx (docs/site/), warnings are errors
#               -> .build/docs/build/html
# With no argument: all three, in that order.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bin="$repo/.venv/bin"
build="$repo/.build"
export PATH="$bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$build/dev:$build/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_LOCAL_TEMP="$build/ansible-tmp"
export PYTHONDONTWRITEBYTECODE=1
export HOME="${BYOC_TEST_HOME:-$build/home}"
mkdir -p "$HOME"
log() { printf '[release] %s\n' "$*"; }

step_collection() {
  rm -rf "$build/dist" && mkdir -p "$build/dist"
  ansible-galaxy collection build --force --output-path "$build/dist" "$repo" | tail -n 1
  ls "$build"/dist/byoc-certificates-*.tar.gz >/dev/null
}

tarball() { ls "$build"/dist/byoc-certificates-*.tar.gz 2>/dev/null | head -n 1; }

step_importer() {
  [ -n "$(tarball)" ] || step_collection
  venv="$build/venv-release"
  sum=$(sha256sum < requirements/release.lock | cut -c1-16)
  if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$sum" ]; then
    log "creating $venv from requirements/release.lock"
    [ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
    "$bin/uv" pip install -q -p "$venv/bin/python" -r requirements/release.lock
    echo "$sum" > "$venv/.stamp"
  fi
  cfg="$build/galaxy-importer.cfg"
  # ansible-test inside galaxy-importer needs a container runtime, and its ansible-lint call has a fixed 180 s
  # timeout (loaders/collection.py) that a loaded 2-core machine exceeds: the sanity and lint layers (production
  # profile) run both instead. The importer still checks the metadata, docs, roles and files of the tarball.
  printf '[galaxy-importer]\nRUN_ANSIBLE_TEST = False\nRUN_ANSIBLE_LINT = False\n' > "$cfg"
  out="$build/galaxy-importer.log"
  rm -rf "$build/importer-out" && mkdir -p "$build/importer-out"
  # A clean environment: only the release venv, so the importer sees the collection as Galaxy would.
  if ! (cd "$build/importer-out" && env -i PATH="$venv/bin:/usr/bin:/bin" HOME="$HOME" LANG=C.UTF-8 \
        GALAXY_IMPORTER_CONFIG="$cfg" "$venv/bin/python" -m galaxy_importer.main "$(tarball)") >"$out" 2>&1; then
    tail -n 30 "$out"; log "galaxy-importer refused $(basename "$(tarball)") (full log: $out)"; return 1
  fi
  if grep -E '^(ERROR|WARNING)' "$out"; then
    log "galaxy-importer reported the lines above (full log: $out)"; return 1
  fi
  log "galaxy-importer accepted $(basename "$(tarball)")"
}

step_docs() {
  site="$build/docs"
  rm -rf "$site" && mkdir -p "$site/rst"
  chmod og-w "$site/rst"  # antsibull-docs wants the directory only writable by itself
  cp docs/site/conf.py docs/site/antsibull-docs.cfg "$site/"
  (cd "$site" && antsibull-docs --config-file antsibull-docs.cfg collection --cleanup everything --fail-on-error \
     --use-current --squash-hierarchy --dest-dir rst byoc.certificates) >"$site/antsibull-docs.log" 2>&1 || {
    cat "$site/antsibull-docs.log"; log "antsibull-docs failed"; return 1; }
  if grep -iE 'warning|error' "$site/antsibull-docs.log"; then log "antsibull-docs warned (above)"; return 1; fi
  cp docs/site/external.rst "$site/rst/"  # ansible-core's labels, offline (see the file)
  antsibull-docs lint-collection-docs --plugin-docs --skip-rstcheck "$repo" || {
    log "antsibull-docs lint-collection-docs failed"; return 1; }
  (cd "$site" && sphinx-build -q -W --keep-going -b html -c . rst build/html) || {
    log "sphinx-build warned or failed"; return 1; }
  log "docs site: $site/build/html/index.html"
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(collection importer docs)
for s in "${steps[@]}"; do
  declare -F "step_$s" >/dev/null || { echo "unknown release step: $s" >&2; exit 2; }
  "step_$s"
done
