#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_store_lease
short_description: Take, renew or give back a lease in the certificate store, so that concurrent runs take turns
version_added: 1.0.0
description:
  - Coordinates runs that share one certificate store, for example the slices of an AWX or Automation Controller
    job (job slicing runs one job as several C(ansible-playbook) processes at the same time, and the members of a
    certificate group can land in different slices).
  - A lease is named like a store group (O(group)) and is that group's lock, the one
    M(byoc.certificates.certificate_store) honours. While one run holds a group's lease, no other run orders a
    certificate for the group or writes its store document. The rotation playbook takes the lease of a group before
    its ACME order, and the lease of the Genesys org's trust record before it adds REMOTE CAs.
  - O(state=acquired) takes the lease, waiting up to O(wait) seconds while another holder has it. The wait prints
    one line - what is waited for, for how long, who holds it and until when - when it starts, when another holder
    has the lease, and every 30 seconds. After taking it, it returns what the group's store document holds now
    (RV(current)), so a run that waited sees the certificate the other run stored.
  - A lease expires O(ttl) seconds after it was taken or renewed. A run that is killed while it holds a lease
    blocks the others for at most O(ttl) seconds; then the next run takes the lease over.
  - Every change is a conditional write of the store backend (filesystem - exclusive create and compare-and-rename
    under the group's file lock; S3 - C(If-None-Match) and C(If-Match) on the ETag), so two runs never both hold a
    lease, and a release never removes a lease that another run has taken since.
  - Expiry is judged with the clock of the run that waits. Keep the clocks of the controller and execution nodes in
    sync (NTP), and O(ttl) far above their difference.
  - The action plugin of the same name runs on the controller and shows the progress while it waits. The module
    does the same work without the progress lines when the action is bypassed.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._store
  - byoc.certificates._attributes.ACTIONGROUP_STORE
  - byoc.certificates._attributes
attributes:
  action:
    description: Runs as an action plugin on the controller (progress while it waits).
    support: full
  check_mode:
    support: full
    details:
      - Says whether the lease would be taken, renewed or released, and who holds it; writes nothing and never waits.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Taking a lease that the same O(holder) already has renews it (a new expiry) and reports a change.
options:
  group:
    description:
      - The lease's name - a certificate group's name (its lease is the group's lock), or another store name such as
        the Genesys org's trust record (C(genesys-trust-<hash>)).
      - 1 to 128 letters, digits, V(.), V(_) or V(-), starting with a letter or digit.
    type: str
    required: true
  passphrase:
    description:
      - Accepted so that the store group's C(module_defaults) apply; a lease opens no key and does not use it.
      - If not set, the environment variable E(BYOC_STORE_PASSPHRASE) is used.
    type: str
  state:
    description:
      - V(acquired) takes the lease (waiting up to O(wait) seconds) or renews it when O(holder) has it already.
      - V(renewed) extends the lease by O(ttl) seconds from now; fails if the lease is no longer O(holder)'s (it
        expired and another run took it).
      - V(released) gives the lease back if O(holder) has it; a lease that another run holds now is left alone with
        a warning.
      - V(read) only says who holds the lease.
    type: str
    choices: [acquired, renewed, released, read]
    default: acquired
  holder:
    description:
      - Who holds the lease. Every task of one run must give the same value.
      - Default - the AWX job (environment E(JOB_ID), one per job slice, else V(run)), the controller's host name
        and the process ID of the C(ansible-playbook) that runs the task, for example V(4711@awx-node-1:2345).
    type: str
  ttl:
    description:
      - Seconds after which the lease expires unless it is renewed (5 to 604800). Choose it longer than the work it
        protects (an ACME order with its DNS-01 challenge) and as short as a killed run may block the others.
    type: int
    default: 900
  wait:
    description:
      - With O(state=acquired), the seconds to wait while another holder has the lease; V(0) fails at once, naming
        the holder. The task fails naming the holder and its expiry when the time is up.
    type: float
    default: 0
  poll:
    description:
      - Seconds between two looks at a lease that another run holds (0.1 to 300).
      - The waiting run also looks when the lease is due to expire.
    type: float
    default: 5
seealso:
  - module: byoc.certificates.certificate_store
  - module: byoc.certificates.certificate_store_info
"""

EXAMPLES = r"""
- name: Take the group's lease before ordering (another job slice may be ordering for the group now)
  byoc.certificates.certificate_store_lease:
    path: /var/lib/byoc/store
    group: sbc-emea
    ttl: 900
    wait: 1800
  register: group_lease

- name: Another slice renewed the group while this one waited - deploy its certificate, order nothing
  ansible.builtin.debug:
    msg: "stored now: {{ group_lease.current.fingerprint }} (waited {{ group_lease.waited }}s)"
  when: group_lease.waited_for | length > 0

- name: Give the lease back
  byoc.certificates.certificate_store_lease:
    path: /var/lib/byoc/store
    group: sbc-emea
    holder: "{{ group_lease.holder }}"
    state: released

- name: Who holds the lease of a group in an S3 store
  byoc.certificates.certificate_store_lease:
    backend: s3
    s3:
      bucket: byoc-certificates
      prefix: prod/
    group: sbc-emea
    state: read
"""

RETURN = r"""
group:
  description: The lease's name.
  returned: always
  type: str
  sample: sbc-emea
holder:
  description: The holder this task acted for (O(holder) or its default).
  returned: always
  type: str
  sample: 4711@awx-node-1:2345
state:
  description: O(state).
  returned: always
  type: str
  sample: acquired
location:
  description: Where the store keeps its data (directory or C(s3://bucket/prefix)).
  returned: always
  type: str
  sample: /var/lib/byoc/store
lease:
  description:
    - The lease after the task - held by RV(holder) after V(acquired) or V(renewed), the other run's lease when
      V(released) found one, the live lease for V(read); V(null) when the lease is free.
  returned: always
  type: dict
  contains:
    holder:
      description: Who holds it.
      type: str
    acquired:
      description: When it was taken (UTC, ISO 8601).
      type: str
    renewed:
      description: When it was last renewed, if it was.
      type: str
    expires:
      description: When it expires unless renewed (UTC, ISO 8601).
      type: str
    host:
      description: The host name of the controller or execution node that took it.
      type: str
    pid:
      description: The process that took it.
      type: int
  sample: {holder: "4711@awx-node-1:2345", acquired: "2026-11-30T08:00:00Z", expires: "2026-11-30T08:15:00Z",
           host: awx-node-1, pid: 2398}
held:
  description: Whether the lease is held (by anyone) after the task.
  returned: always
  type: bool
held_by_us:
  description: Whether RV(holder) holds the lease after the task.
  returned: always
  type: bool
would_wait:
  description: In check mode with O(state=acquired), whether another run holds the lease now.
  returned: check mode, state=acquired
  type: bool
waited:
  description: Seconds spent waiting for another holder.
  returned: always
  type: float
  sample: 42.5
waited_for:
  description: The other holders seen while waiting, in order, with their expiry.
  returned: always
  type: list
  elements: dict
  sample: [{holder: "4712@awx-node-2:877", acquired: "2026-11-30T07:59:40Z", expires: "2026-11-30T08:14:40Z"}]
progress:
  description: The progress lines printed while waiting (at the start, on a new holder, then every 30 seconds).
  returned: always
  type: list
  elements: str
current:
  description:
    - The group's current certificate in the store, read after the lease was taken (V(null) when none) - what
      another run stored while this one waited.
  returned: state=acquired or state=read
  type: dict
  contains:
    fingerprint:
      description: SHA-256 fingerprint of the certificate.
      type: str
    not_after:
      description: Its expiry.
      type: str
revision:
  description: The revision of the group's store document read with RV(current) (V(0) when there is none).
  returned: state=acquired or state=read
  type: int
msg:
  description: One sentence about the outcome.
  returned: always
  type: str
"""

from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module
from ansible_collections.byoc.certificates.plugins.module_utils._store import lease as _lease


def work(module) -> dict:
    result = _lease.run_task(module.params, check_mode=module.check_mode)
    warning = result.pop("warning", None)
    if warning:
        module.warn(warning)
    return result


def main() -> None:
    module = ByocModule(argument_spec=_lease.argument_spec(), supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
