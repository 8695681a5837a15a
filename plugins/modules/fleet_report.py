#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Write the fleet report of a rotation run (console table, JSON, Prometheus textfile) and ping a heartbeat
version_added: 0.1.0
description:
  - Takes the outcome of every certificate group of a run and prints a table (group, status, old and new expiry,
    members, trunks connected, reason), writes C(report.json) and the Prometheus textfile C(byoc_certificates.prom)
    into O(dir), and pings O(heartbeat_url).
  - "The textfile has, per endpoint: the expiry time of the served certificate, the next renewal time of its group
    and the time of the last successful run (a run whose group status is V(unchanged) or V(renewed); a failed run
    keeps the time from the file it replaces). Per group: the status (1 for the current one, 0 for the others), the
    number of findings, and the trunks connected. Files are replaced atomically (a temporary file in the same
    directory, then a rename), so node_exporter's textfile collector never reads half a file."
  - The heartbeat follows the healthchecks.io convention (U(https://healthchecks.io/docs/http_api/)); the URL is
    pinged (HTTP POST, the summary line as body) when the run succeeded, and the URL with C(/fail) appended when it
    failed. A ping that fails is a warning, never a failure of the task.
  - "The report names what a user would otherwise find at 2 AM, from the data given: a leaf without the TLS clientAuth
    extended key usage on a device that presents it as a client, a Genesys CA that expires before the leaf, and a
    group whose next renewal falls outside every maintenance window; each group's C(warnings) are passed
    through."
  - Runs on the controller as an action plugin (one in-process call); the module works the same way when the action
    is bypassed, but cannot print the table (it is in RV(table)).
  - Usually called by the role M(byoc.certificates.fleet_report) (C(ansible-doc -t role byoc.certificates.fleet_report)).
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._attributes.ACTIONGROUP_REPORT
  - byoc.certificates._attributes
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
  check_mode:
    support: full
    details:
      - In check mode nothing is written and no heartbeat is sent; the table is still printed and returned.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The task never reports a change. The files are rewritten on every run, because they carry the run's time.
options:
  groups:
    description:
      - The outcome of each certificate group of the run.
      - "Each item: C(group) (name, required), C(status) (one of V(unchanged), V(renewed), V(rolled_back), V(failed),
        V(skipped), V(deferred)), C(reason), C(old_not_after), C(new_not_after), C(next_renewal) (times as ISO 8601
        with a time zone, or seconds since the epoch), C(issuer) (optional, the leaf's issuer as an RFC 4514 name),
        C(members), C(trunks) (list of C(name), C(connected), C(observed_at)), C(warnings) (list of sentences, passed
        through), C(genesys_cas), C(maintenance_windows)."
      - "C(members): list of C(host), C(endpoint) such as C(sbc1.example.com:5061), C(fingerprint), C(not_after), and
        optionally C(issuer) (the served leaf's issuer), C(extended_key_usage) (list, as returned by
        M(byoc.certificates.tls_endpoint_info)), C(vendor) (V(audiocodes), V(ribbon_core), V(ribbon_edge)),
        C(client_certificate_configured) (Ribbon Core - the tlsProfile's C(clientCertName) points at the installed
        object) and C(client_auth_required) (bool, the device presents this certificate as a TLS client; when not
        given it is derived from C(vendor) - AudioCodes yes (the TLS context serves outgoing TLS too), Ribbon Core
        from C(client_certificate_configured) (unknown - yes), Ribbon Edge yes (the stricter reading); no vendor -
        no)."
      - "C(genesys_cas): list of C(name), C(not_after) and optionally C(subject), C(issuer), C(fingerprint) of the CAs
        the org trusts (for example the C(certificates) of M(byoc.certificates.genesys_edge_certificate_info)'s REMOTE
        entries). With the leaf's issuer and the CAs' subjects, only the CAs the leaf chains to (walked up by name)
        are held against the leaf's expiry, and a leaf that no org CA issued is a finding; otherwise every CA given
        is taken as the group's chain."
      - "C(maintenance_windows): list in the inventory's C(byoc_maintenance_window) format - C(timezone) (IANA,
        required), C(start) (local C(HH:MM), default V(00:00)), C(end) (default V(24:00); an end at or before the
        start crosses midnight), C(days) (V(mon) ... V(sun), only the first three letters count; default every
        day)."
    type: list
    elements: dict
    required: true
  dir:
    description: The directory for C(report.json) and C(byoc_certificates.prom) (created if missing). Point the
      node_exporter textfile collector at it (C(--collector.textfile.directory)).
    type: path
    required: true
  heartbeat_url:
    description: A dead man's switch URL (for example a healthchecks.io check's ping URL). Treated as a secret, never
      printed beyond its scheme and host.
    type: str
  heartbeat_timeout:
    description: Seconds to wait for the heartbeat server.
    type: float
    default: 10
  failed:
    description: Whether the run failed (then the heartbeat goes to C(<url>/fail)). Default is failed when any group
      is V(failed) or V(rolled_back).
    type: bool
  run_id:
    description: An identifier of the run (for example the AWX job id), written into C(report.json) and the table.
    type: str
  print_table:
    description: Print the table on the console (action plugin only).
    type: bool
    default: true
  read_only:
    description:
      - The run rotated nothing (C(playbooks/report.yml)). No endpoint gets a new last-success time, and the last
        run's time and success in the textfile stay those of the last rotation run, so a report run after a failed
        rotation does not hide the failure from an alert on their age.
    type: bool
    default: false
seealso:
  - module: byoc.certificates.tls_endpoint_info
  - module: byoc.certificates.genesys_trunk_info
"""

EXAMPLES = r"""
- name: Report the run
  byoc.certificates.fleet_report:
    dir: /var/lib/node_exporter/textfile
    heartbeat_url: "{{ lookup('ansible.builtin.env', 'BYOC_HEARTBEAT_URL') }}"
    run_id: "{{ tower_job_id | default(omit) }}"
    groups:
      - group: sbc-emea
        status: renewed
        reason: 31% of the lifetime left
        old_not_after: "2026-12-20T10:00:00Z"
        new_not_after: "2027-02-02T10:00:00Z"
        next_renewal: "2027-01-12T02:00:00Z"
        members:
          - host: sbc1
            endpoint: sbc1.example.com:5061
            fingerprint: 3f5a0c...
            not_after: "2027-02-02T10:00:00Z"
            client_auth_required: true
            extended_key_usage: [serverAuth]
        trunks:
          - name: SBC EMEA
            connected: true
            observed_at: "2026-11-30T05:40:00Z"
        maintenance_windows:
          - timezone: Europe/Berlin
            days: [sat, sun]
            start: "01:00"
            end: "05:00"
"""

RETURN = r"""
table:
  description: The console table, line by line (with a summary line and one C(!) line per finding).
  returned: always
  type: list
  elements: str
  sample: ["GROUP     STATUS   EXPIRY OLD -> NEW         MEMBERS  TRUNKS  REASON", "..."]
report_failed:
  description: Whether the report counts the run as failed (from O(failed), or any group V(failed) or V(rolled_back)).
  returned: always
  type: bool
  sample: false
findings:
  description: The findings per group (only groups with findings).
  returned: always
  type: dict
  sample: {sbc-emea: ["sbc1: the leaf has no TLS clientAuth extended key usage ..."]}
summary:
  description: Number of groups, per status, and number of findings.
  returned: always
  type: dict
  sample: {groups: 3, unchanged: 2, renewed: 1, rolled_back: 0, failed: 0, skipped: 0, deferred: 0, findings: 1}
files:
  description: Where the files are (C(json), C(prometheus)); not written in check mode.
  returned: always
  type: dict
  sample: {json: /var/lib/byoc/report/report.json, prometheus: /var/lib/byoc/report/byoc_certificates.prom}
written:
  description: Whether the files were written (false in check mode).
  returned: always
  type: bool
  sample: true
heartbeat:
  description: The heartbeat ping (C(sent), C(kind) V(success) or V(fail), C(target) without its secret path,
    C(status)); C(sent=false) without O(heartbeat_url), in check mode, or when the ping failed (then a warning).
  returned: always
  type: dict
  sample: {sent: true, kind: success, target: "https://hc-ping.com/...", status: 200}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_report
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


def work(module: AnsibleModule) -> dict:
    result = _fleet_report.run(module.params, check_mode=module.check_mode, opener=open_url)
    for warning in result.pop("warnings"):
        module.warn(warning)
    return result


def main() -> None:
    module = ByocModule(argument_spec=_fleet_report.ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
