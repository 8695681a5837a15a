#!/usr/bin/env bash
# Run the test layers. With no argument: all of them, in order, stopping at the first failure.
#   unit           pytest tests/unit
#   sanity         ansible-test sanity (offline, in a copy of the tree under .build/ansible-test)
#   ansible-units  ansible-test units (same copy)
#   lint           ansible-lint, production profile
#   integration    pytest tests/integration against the local lab
#   molecule       molecule scenarios in extensions/molecule
#   release        collection build + galaxy-importer, docs site warning-free (scripts/release.sh)
#   bench          the CI-sized fleet benchmark (N=10, our pipeline; counts asserted, never timings)
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
export PYTHONPATH="$build/dev"
# ansible-test needs the tree at .../ansible_collections/byoc/certificates, and outside this git checkout (inside
# it, ansible-test would ask git for the file list, and .build/ is ignored, so it would test nothing).
at_root="${TMPDIR:-/tmp}/byoc-ansible-test-$(printf '%s' "$repo" | sha1sum | cut -c1-10)"
at_tree="$at_root/ansible_collections/byoc/certificates"

# The Genesys SDK reads ~/.genesyscloudpython; ansible-test keeps caches under ~. Keep both out of the real home.
export BYOC_TEST_HOME="$build/home"
mkdir -p "$BYOC_TEST_HOME"

sync_tree() {
  mkdir -p "$at_tree"
  rsync -a --delete --exclude '/.venv' --exclude '/.build' --exclude '/.lab' --exclude '/.git' \
    --exclude '/tests/output' --exclude '__pycache__' --exclude '/.ansible' "$repo/" "$at_tree/"
}

layer_unit() {
  "$bin/python" -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir "$repo" -c /dev/null tests/unit
}

# Each layer runs inside `if`, where bash ignores `set -e`: every command whose failure matters ends in
# `|| return 1`, or the layer's status would be that of its last command only.
layer_sanity() {
  sync_tree || return 1
  (cd "$at_tree" && HOME="$BYOC_TEST_HOME" "$bin/ansible-test" sanity --local --python 3.11 --color no \
     --skip-test shellcheck)
}

layer_ansible_units() {
  sync_tree || return 1
  (cd "$at_tree" && HOME="$BYOC_TEST_HOME" "$bin/ansible-test" units --local --python 3.11 --color no)
}

layer_lint() {
  HOME="$BYOC_TEST_HOME" "$bin/ansible-lint" --offline -q || return 1
  "$bin/antsibull-changelog" lint || return 1
  # Every module's documentation must render (what a user sees with ansible-doc).
  for mod in plugins/modules/*.py; do
    name=$(basename "$mod" .py)
    out=$(HOME="$BYOC_TEST_HOME" "$bin/ansible-doc" -t module "byoc.certificates.$name" 2>&1) || {
      echo "ansible-doc byoc.certificates.$name failed:"; echo "$out"; return 1; }
    grep -q "EXAMPLES" <<<"$out" && grep -q "RETURN VALUES" <<<"$out" || {
      echo "ansible-doc byoc.certificates.$name lacks EXAMPLES or RETURN VALUES"; return 1; }
  done
}

layer_integration() {
  # Three workers on two cores, whole files per worker: each worker runs its own lab, and a file's tests keep their
  # order. The pipeline files (fault matrix, deploy faults, slicing) spend most of their time waiting on the lab
  # (health rounds, retries, leases), so a third worker uses idle CPU; the fault matrix is the longest file.
  HOME="$BYOC_TEST_HOME" "$bin/python" -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir "$repo" -c /dev/null -n "${BYOC_TEST_WORKERS:-3}" --dist loadfile --durations=15 tests/integration
}

layer_bench() {
  HOME="$BYOC_TEST_HOME" "$bin/python" -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir "$repo" -c /dev/null tests/bench
}

layer_molecule() {
  if ! ls extensions/molecule/*/molecule.yml >/dev/null 2>&1; then
    echo "no molecule scenarios"
    return 0
  fi
  local failed=()
  for scenario in extensions/molecule/*/molecule.yml; do
    name=$(basename "$(dirname "$scenario")")
    # Molecule keeps per-scenario state between runs ("instances already prepared" would skip prepare, which
    # starts the lab). Stop whatever lab an interrupted run left, then reset the scenario.
    for stale in "$BYOC_TEST_HOME"/.ansible/tmp/molecule.*."$name"/lab; do
      [ -f "$stale/lab.json" ] && "$bin/python" tests/lab/lab.py down --dir "$stale" >/dev/null
    done
    HOME="$BYOC_TEST_HOME" "$bin/molecule" reset -s "$name" >/dev/null 2>&1 || true
    (HOME="$BYOC_TEST_HOME" NO_COLOR=1 ANSIBLE_NOCOLOR=1 "$bin/molecule" test -s "$name") || failed+=("$name")
  done
  # every scenario runs; any failure fails the layer (before, only the last scenario's status counted)
  if [ ${#failed[@]} -gt 0 ]; then
    echo "molecule: failed scenarios: ${failed[*]}"
    return 1
  fi
}

layer_release() {
  bash "$repo/scripts/release.sh"
}

layers=("$@")
[ ${#layers[@]} -gt 0 ] || layers=(unit sanity ansible-units lint release integration molecule bench)
summary=()
for layer in "${layers[@]}"; do
  fn="layer_${layer//-/_}"
  if ! declare -F "$fn" >/dev/null; then
    echo "unknown test layer: $layer" >&2
    exit 2
  fi
  echo "=== $layer ==="
  start=$SECONDS
  if "$fn"; then
    summary+=("$layer: passed in $((SECONDS - start))s")
  else
    summary+=("$layer: FAILED after $((SECONDS - start))s")
    printf '%s\n' "${summary[@]}"
    exit 1
  fi
done
echo "=== summary ==="
printf '%s\n' "${summary[@]}"
