#!/usr/bin/env bash
# make demo: start the lab parts the demo needs, run the demo playbook, print the report, stop the lab.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bin="$repo/.venv/bin"
export PATH="$bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$repo/.build/dev:$repo/.build/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_LOCAL_TEMP="$repo/.build/ansible-tmp"
export ANSIBLE_PYTHON_INTERPRETER="$bin/python"
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-1}"
lab_dir="${BYOC_LAB_DIR:-$repo/.lab}"

echo "==> starting the lab in $lab_dir (BIND9 with TSIG, a recursive resolver, Pebble 2.10)"
"$bin/python" tests/lab/lab.py up --dir "$lab_dir" bind pebble-dns
trap '"$bin/python" tests/lab/lab.py down --dir "$lab_dir"' EXIT

echo "==> issuing a certificate over ACME DNS-01"
"$bin/ansible-playbook" -i localhost, -c local playbooks/demo_issue.yml -e "byoc_demo_lab_json=$lab_dir/lab.json"
