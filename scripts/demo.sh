#!/usr/bin/env bash
# make demo: start the lab, rotate the example fleet (inventory.example/lab) with playbooks/rotate.yml, print the
# report, stop the lab. Works from a clean checkout (make demo runs scripts/bootstrap.sh first).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bin="$repo/.venv/bin"
export PATH="$bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$repo/.build/dev:$repo/.build/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_LOCAL_TEMP="$repo/.build/ansible-tmp"
export ANSIBLE_PYTHON_INTERPRETER="$bin/python"
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-1}"
export ANSIBLE_DISPLAY_SKIPPED_HOSTS=false
lab_dir="${BYOC_LAB_DIR:-$repo/.lab}"
export BYOC_LAB_JSON="$lab_dir/lab.json"
export BYOC_REPORT_DIR="${BYOC_REPORT_DIR:-$lab_dir/report}"
# A throw-away store passphrase for the lab's store (in real use it comes from vault or an AWX credential).
BYOC_STORE_PASSPHRASE="demo-$("$bin/python" -c 'import secrets; print(secrets.token_hex(12))')"
export BYOC_STORE_PASSPHRASE

echo "==> starting the lab in $lab_dir: BIND9 (lab.test zone), Pebble 2.10, the Genesys Cloud org with two Edges,"
echo "    an AudioCodes HA pair + a standalone unit, a Ribbon SBC Core HA pair and a Ribbon SBC Edge; every SBC starts"
echo "    with an EXPIRED SIP-TLS certificate, as a fleet that nobody rotated in time"
"$bin/python" tests/lab/lab.py up --expired --dir "$lab_dir" bind pebble genesys audiocodes ribbon_core ribbon_edge
trap '"$bin/python" tests/lab/lab.py down --dir "$lab_dir"' EXIT
# A new lab has a new ACME CA: start with an empty store and no old report.
rm -rf "$lab_dir/store" "$BYOC_REPORT_DIR"

echo "==> pointing the org's trunks at every SBC by its SIP-TLS name (lab set-up, test-only control API)"
"$bin/ansible-playbook" -i inventory.example/lab playbooks/demo_lab.yml

echo "==> before: what the Edges see (scripts/demo_observe.py, independent of the playbooks)"
"$bin/python" scripts/demo_observe.py "$BYOC_LAB_JSON" before

echo "==> the plan (--check --diff: nothing is written)"
# the plan of the whole run (one line per host: group/host (vendor, SIP-TLS name:port): what and why), then the count
"$bin/ansible-playbook" -i inventory.example/lab playbooks/rotate.yml --check --diff \
  | sed -n '/Show the plan of the run/,/the rollout covers only these/p' | sed -nE 's/^ +"msg": "(.*)"$/  \1/p; t; s/^ +"(.*)",?$/  \1/p' || true

echo "==> rotating the fleet: canary first, then the rest (playbooks/rotate.yml)"
"$bin/ansible-playbook" -i inventory.example/lab playbooks/rotate.yml

echo "==> after: what the Edges see (new chain by name, trusting only the ACME root; trunks as Genesys computes them)"
"$bin/python" scripts/demo_observe.py "$BYOC_LAB_JSON" after

echo "==> a second run changes nothing and orders nothing (its report goes to $BYOC_REPORT_DIR/second-run)"
BYOC_REPORT_DIR="$BYOC_REPORT_DIR/second-run" "$bin/ansible-playbook" -i inventory.example/lab playbooks/rotate.yml | sed -n '/fleet report/,/^$/p;/PLAY RECAP/,$p'

echo "==> report files: $BYOC_REPORT_DIR/report.json and $BYOC_REPORT_DIR/byoc_certificates.prom"
ls -l "$BYOC_REPORT_DIR"
