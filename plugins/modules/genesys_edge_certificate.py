#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: genesys_edge_certificate
short_description: Manage REMOTE certificate authorities in the Genesys Cloud Edge trust store
version_added: 0.1.0
description:
  - Makes the CA certificates that issue your SBCs' SIP-TLS certificates trusted by the Genesys Cloud Edges
    (BYOC Premises), or removes them.
  - A PEM chain becomes one REMOTE certificate authority per CA certificate. Entries are found by the SHA-256
    fingerprint of their certificate, never by name or PEM text, so the module is idempotent.
  - Only REMOTE entries are ever changed. The org's MANAGED CA (maintained by Genesys) is never touched; aiming
    O(state=absent) at it fails with a clear message before anything is changed.
  - Add the new CA before an SBC serves a certificate that chains to it; remove the old one only after every trunk
    is connected again (see M(byoc.certificates.genesys_trunk_info)). Deleting and re-adding an entry gives it a new id.
  - With O(store) and O(group), O(state=present) records in the certificate store which CAs it B(created) in the org.
    O(state=pruned) removes, after O(grace_period) days, the recorded CAs that no group needs any more (in no chain of
    a group's current or previous certificate in the store). A CA this module did not create is never pruned.
  - Uses the official Genesys Cloud Python SDK.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._genesys
  - byoc.certificates._attributes.ACTIONGROUP_GENESYS
  - byoc.certificates._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  state:
    description:
      - V(present) makes every CA certificate of O(certificate) a REMOTE entry with exactly O(services).
      - V(absent) removes the REMOTE entries holding the certificates of O(certificate) or O(fingerprints).
      - V(pruned) removes superseded REMOTE CAs that this module created (recorded in O(store)), after
        O(grace_period), never one in the chain of the current or previous certificate of a group in O(groups), never
        one recorded for a group not in O(groups), never one it did not create, never the MANAGED CA. In check mode
        it shows what would be pruned. Needs O(store) and O(groups).
    type: str
    choices: [present, absent, pruned]
    default: present
  certificate:
    description:
      - PEM text of one CA certificate or of a chain (issuing CA, then root).
      - Checked, before any request, by the same rules as every module of the collection that takes certificates.
        Each certificate must be a CA certificate (basicConstraints CA:TRUE, or an old v1 self-signed root). Refused,
        naming this option and the reason - a leaf (end-entity) certificate, because it would become a trust anchor;
        private key material, which is never shown; text that is not PEM; and, with O(state=present), a CA that has
        expired or is not valid yet (see O(allow_expired_ca)).
      - Required with O(state=present). With O(state=absent), this or O(fingerprints); an expired CA can always be
        removed.
    type: str
  allow_expired_ca:
    description:
      - With O(state=present), also add CA certificates that have expired or are not valid yet. Each one is reported
        with a warning.
      - An Edge that trusts only an expired CA cannot connect to an SBC whose certificate it issued, so this is meant
        for keeping an old entry while it is being replaced, not for a new one.
    type: bool
    default: false
  fingerprints:
    description:
      - With O(state=absent), SHA-256 fingerprints (hex, colons allowed) of the CA certificates to remove.
    type: list
    elements: str
  name:
    description:
      - Name of the entry. With a chain, each entry is named C(<name> - <CN of that certificate>).
      - When not set, new entries are named after the certificate's common name, and existing entries keep their
        names.
    type: str
  services:
    description:
      - The services the Edges may use this CA for. The documented UI choice for SIP trunks is V(SIP).
      - An existing entry whose services differ is updated in place (same id), with the version check Genesys
        Cloud applies; a version conflict is resolved by reading again and retrying.
    type: list
    elements: str
    default: [SIP]
  store:
    description:
      - The certificate store (as for M(byoc.certificates.certificate_store)) that keeps, per org, which CAs this
        module created. The record is the document of the reserved group C(genesys-trust-<16 hex>), derived from the
        API URL and the OAuth client id (an OAuth client belongs to one org; the id is hashed, never written).
      - With O(state=present) and O(group), each CA created is recorded. With O(state=pruned), the current and
        previous material of every group in O(groups) is read from here (no passphrase needed, only public
        certificates are read).
    type: dict
    suboptions:
      backend:
        description: V(filesystem) (a directory on the controller) or V(s3).
        type: str
        choices: [filesystem, s3]
        default: filesystem
      path:
        description: The store's root directory, for O(store.backend=filesystem). Default from E(BYOC_STORE_PATH).
        type: path
      s3:
        description: The S3 bucket, for O(store.backend=s3) (as for M(byoc.certificates.certificate_store)).
        type: dict
        suboptions:
          bucket:
            description: The bucket name.
            type: str
            required: true
          prefix:
            description: A key prefix under which the groups are kept.
            type: str
            default: ''
          endpoint_url:
            description: An S3-compatible endpoint. Default from E(BYOC_STORE_S3_ENDPOINT_URL).
            type: str
          region:
            description: The AWS region. Default from E(AWS_REGION) or E(AWS_DEFAULT_REGION).
            type: str
          access_key:
            description: The AWS access key ID. Default from E(AWS_ACCESS_KEY_ID).
            type: str
          secret_key:
            description: The AWS secret access key. Default from E(AWS_SECRET_ACCESS_KEY).
            type: str
          session_token:
            description: An AWS session token. Default from E(AWS_SESSION_TOKEN).
            type: str
          validate_certs:
            description: Verify the TLS certificate of the S3 endpoint.
            type: bool
            default: true
          ca_path:
            description: A PEM file with the CAs that sign the S3 endpoint's certificate.
            type: path
  group:
    description:
      - With O(state=present) and O(store), the certificate group whose chain this is; the CAs created are recorded
        for it.
    type: str
  groups:
    description:
      - With O(state=pruned), every certificate group whose SBCs this org trusts through REMOTE CAs. Their current
        and previous chains (what a rollback goes back to) are never pruned. A group listed without a current
        certificate in the store (not issued yet) is treated as not listed - the CAs recorded for it are kept - with
        a warning.
      - With O(state=present) and O(store), the certificate groups that share this chain (with or instead of
        O(group)); the CAs created are recorded for each of them, so one call serves every group of a batch that
        has the same issuing chain.
    type: list
    elements: str
  grace_period:
    description:
      - With O(state=pruned), days a CA must have been superseded (needed by no group, counted from the first prune
        run that found it so) before it is removed.
      - The default of 30 days outlasts an on-demand rollback (C(rollback.yml)) of a rotation found bad days later,
        and the Edges' long-lived TLS sessions to an SBC (they keep the certificate of their handshake); and it is
        short against a certificate's lifetime, so the org's list does not grow without end.
    type: int
    default: 30
  keep_fingerprints:
    description:
      - With O(state=pruned), SHA-256 fingerprints of further CA certificates never to prune (for example the
        chain an SBC serves that the store does not know of).
    type: list
    elements: str
seealso:
  - module: byoc.certificates.genesys_edge_certificate_info
  - module: byoc.certificates.genesys_trunk_info
"""

EXAMPLES = r"""
- name: Trust the CA chain that issues the SBC certificates (credentials from the environment)
  byoc.certificates.genesys_edge_certificate:
    region: eu_west_1
    certificate: "{{ lookup('ansible.builtin.file', 'pki/sbc-issuing-chain.pem') }}"
    name: SBC issuing CA 2027

- name: Remove the previous CA after the rotation, by fingerprint
  byoc.certificates.genesys_edge_certificate:
    region: eu_west_1
    state: absent
    fingerprints:
      - "3f:9a:...:c1"

- name: Trust a group's chain and record what was created (for pruning later)
  byoc.certificates.genesys_edge_certificate:
    region: eu_west_1
    certificate: "{{ issuing_chain }}"
    store: {path: /var/lib/byoc-store}
    group: sbc-emea

- name: Trust one chain shared by several groups in one call (each group is recorded for the CAs created)
  byoc.certificates.genesys_edge_certificate:
    region: eu_west_1
    certificate: "{{ issuing_chain }}"
    store: {path: /var/lib/byoc-store}
    groups: [sbc-emea, sbc-us]

- name: Show which superseded REMOTE CAs created by byoc.certificates would be pruned (30 days after)
  byoc.certificates.genesys_edge_certificate:
    region: eu_west_1
    state: pruned
    store: {path: /var/lib/byoc-store}
    groups: [sbc-emea, sbc-us]
  check_mode: true

- name: Use module_defaults for the connection
  module_defaults:
    group/byoc.certificates.genesys:
      region: "{{ genesys_region }}"
      client_id: "{{ genesys_client_id }}"
      client_secret: "{{ genesys_client_secret }}"
  block:
    - name: Preview what would change
      byoc.certificates.genesys_edge_certificate:
        certificate: "{{ new_ca_chain }}"
      check_mode: true
      diff: true
"""

RETURN = r"""
authorities:
  description:
    - One item per CA certificate asked for, with what was (or, in check mode, would be) done.
    - With O(state=pruned), one V(delete) item per entry pruned (or that would be).
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(create), V(update), V(delete) or V(none).
      type: str
      sample: create
    id:
      description: Id of the entry (absent for an entry created in check mode).
      type: str
      sample: 3b0c1b9e-4e0b-4b3e-9d38-8f0a2f7b9e11
    name:
      description: Name of the entry.
      type: str
      sample: BYOC SBC issuing CA
    fingerprint:
      description: SHA-256 fingerprint of the certificate (lowercase hex).
      type: str
      sample: 5e1f0d0b8d3d6c9c6a8e8f6a0e8d2c7b4b1f3a2d9c8e7f6a5b4c3d2e1f0a9b8c
    services:
      description: Services of the entry after the change.
      type: list
      elements: str
      sample: [SIP]
    subject:
      description: Subject of the certificate (when known from O(certificate)).
      type: str
      sample: CN=BYOC SBC issuing CA,O=Example
    not_after:
      description: Expiry of the certificate (when known from O(certificate)).
      type: str
      sample: "2030-01-01T00:00:00+00:00"
prune:
  description:
    - With O(state=pruned), the verdict on each CA recorded as created by this module.
    - When the org was not read (RV(org_read)), a CA removed by someone else is still listed; the next run that reads
      the org forgets it.
  returned: when state=pruned
  type: list
  elements: dict
  contains:
    fingerprint:
      description: SHA-256 fingerprint of the CA certificate.
      type: str
      sample: 5e1f0d0b8d3d6c9c6a8e8f6a0e8d2c7b4b1f3a2d9c8e7f6a5b4c3d2e1f0a9b8c
    id:
      description: Id of the org's entry.
      type: str
      sample: 3b0c1b9e-4e0b-4b3e-9d38-8f0a2f7b9e11
    name:
      description: Name of the entry when it was created.
      type: str
      sample: byoc.certificates issuing chain - E5
    subject:
      description: Subject of the CA certificate.
      type: str
      sample: CN=E5,O=Let's Encrypt,C=US
    groups:
      description: The certificate groups it was added for.
      type: list
      elements: str
      sample: [sbc-emea]
    verdict:
      description:
        - V(pruned) (removed, or would be in check mode), V(waiting) (superseded, within the grace period),
          V(in use) (in a chain of a group's current or previous certificate), V(kept) (see RV(prune[].why)),
          V(gone) (no longer in the org, forgotten).
      type: str
      sample: waiting
    why:
      description: The reason, in a sentence.
      type: str
      sample: superseded since 2026-11-30T08:00:00Z; the grace period of 30 days ends 2026-12-30T08:00:00Z
    superseded:
      description: With V(waiting) and V(pruned), since when no group needs it.
      type: str
      sample: "2026-11-30T08:00:00Z"
    prune_after:
      description: With V(waiting), when it may be pruned.
      type: str
      sample: "2026-12-30T08:00:00Z"
org_read:
  description:
    - With O(state=pruned), whether the org's CAs were read. They are read only when a recorded CA could be removed
      now (from the store alone), so a run with nothing due sends no request to Genesys Cloud.
  returned: when state=pruned
  type: bool
  sample: false
left_alone:
  description:
    - With O(state=pruned), the REMOTE entries this module did not create (never pruned); empty when the org was not
      read (RV(org_read)).
  returned: when state=pruned
  type: list
  elements: dict
  sample: [{name: Partner root, id: 9d1..., fingerprint: 9c0e...}]
groups_without_material:
  description: With O(state=pruned), the groups of O(groups) that have no current certificate in the store.
  returned: when state=pruned
  type: list
  elements: str
  sample: []
recorded:
  description: With O(store), whether the store's record of created CAs (or their superseded times) was written.
  returned: when store is set
  type: bool
  sample: true
diff:
  description: Before and after of the REMOTE entries, keyed by fingerprint (only with C(--diff)).
  returned: when diff mode is on
  type: dict
  sample:
    before: {remote_certificate_authorities: {}}
    after: {remote_certificate_authorities: {"5e1f...9b8c": {name: BYOC SBC issuing CA, services: [SIP]}}}
api:
  description: What the run cost against the API.
  returned: always
  type: dict
  contains:
    requests:
      description: HTTP requests sent, retries included.
      type: int
      sample: 2
    tokens_minted:
      description: OAuth tokens minted by this task (0 when a cached token was used).
      type: int
      sample: 0
    rate_limit_waits:
      description: Seconds waited for each HTTP 429.
      type: list
      elements: float
      sample: []
"""

from ansible.module_utils.basic import AnsibleModule

import copy
import datetime

from ansible_collections.byoc.certificates.plugins.module_utils import _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, NotFound
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import trust
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.client import load_sdk
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.common import (
    check_connection_params,
    client_from_params,
    connection_argument_spec,
    stats,
)
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module
from ansible_collections.byoc.certificates.plugins.module_utils._store import base as store_base
from ansible_collections.byoc.certificates.plugins.module_utils._store import document as store_doc

API = "TelephonyProvidersEdgeApi"


def work(module: AnsibleModule) -> dict:
    p = module.params
    if p["state"] == "pruned":
        return work_pruned(module)
    # 1. Input, before anything is touched.
    services = trust.check_services(p["services"])
    if p["keep_fingerprints"]:
        raise InputError("keep_fingerprints", "is only used with state=pruned")
    if p["groups"] and p["state"] != "present":
        raise InputError("groups", "is only used with state=pruned, or with state=present and store")
    for name in ("group", "groups"):
        if p[name] and not p["store"]:
            raise InputError(name, "is recorded in the store: give store as well")
    record_for: list[str] = []
    if p["store"] and p["state"] == "present":
        if not p["group"] and not p["groups"]:
            raise InputError("group", "state=present with store records the CAs created for a certificate group:"
                                      " give the group (or groups, every group that shares this chain)")
        record_for = [store_base.check_group(p["group"])] if p["group"] else []
        for g in p["groups"] or []:
            try:
                record_for.append(store_base.check_group(g))
            except InputError as exc:  # the same rule, named after the option that holds the bad name
                raise InputError("groups", exc.msg.split(": ", 1)[-1]) from None
    desired: list[dict] = []
    remove: list[str] = []
    warnings: list[str] = []
    if p["state"] == "present":
        if not p["certificate"]:
            raise InputError("certificate", "required with state=present (PEM of the CA certificate or chain)")
        if p["fingerprints"]:
            raise InputError("fingerprints", "only used with state=absent")
        desired = trust.desired_authorities(p["certificate"], "certificate", p["name"], services,
                                            allow_expired=p["allow_expired_ca"], warnings=warnings)
    else:
        if p["certificate"]:
            # Removing an expired CA is what a clean-up does: allowed without a warning.
            remove = [d["fingerprint"] for d in trust.desired_authorities(p["certificate"], "certificate", None,
                                                                          services, allow_expired=True)]
        remove += [trust.normalize_fingerprint(f, "fingerprints") for f in p["fingerprints"] or []]
        if not remove:
            raise InputError("certificate", "state=absent needs certificate or fingerprints to know what to remove")
    field = "certificate" if p["certificate"] else "fingerprints"
    api_url = check_connection_params(p)
    for warning in warnings:
        module.warn(warning)

    # 2. Read.
    client = client_from_params(p, api_url)
    listing = client.call(API, "get_telephony_providers_edges_certificateauthorities")
    existing = [trust.summarize(client.to_wire(ca)) for ca in listing.entities or []]

    # 3. Compare by fingerprint.
    if p["state"] == "present":
        actions = trust.plan_present(existing, desired, name_given=bool(p["name"]))
        for act in actions:
            if act.get("note"):
                module.warn(f"{act['fingerprint']}: {act['note']}; left as it is.")
    else:
        actions = trust.plan_absent(existing, remove, field)
    changed = any(a["action"] != "none" for a in actions)

    # 4. Write only what differs; record what was created even when a later write fails (a CA left unrecorded is
    # never pruned, which is the safe side). A CA recorded before that this group needs again is no longer
    # superseded.
    recording = bool(p["store"]) and p["state"] == "present" and not module.check_mode
    recorded = False
    try:
        if changed and not module.check_mode:
            for act in actions:
                apply_action(client, act)
    finally:
        if recording:
            now = datetime.datetime.now(datetime.timezone.utc)
            recorded = update_ledger(p, api_url, lambda ledger: trust.record_added(ledger, actions, record_for, now))
    result = {"changed": changed, "authorities": [trust.public(a) for a in actions], "api": stats(client)}
    if p["store"]:
        result["recorded"] = recorded
    if module._diff:
        result["diff"] = {"before": trust.diff_view(existing), "after": trust.diff_view(trust.apply_to(existing, actions))}
    return result


def open_ledger_store(p: dict, api_url: str):
    """The store, opened on the org's ledger group. Returns (store, ledger group name)."""
    name = trust.ledger_group(api_url, p["client_id"] or "")
    return store_doc.open_store(dict(p["store"], group=name)), name


def update_ledger(p: dict, api_url: str, change) -> bool:
    """Read the org's ledger, apply ``change(ledger) -> bool``, and write it back if changed: a compare-and-swap on
    the document's revision, retried on a concurrent write (the store's rule, issue 10)."""
    store, name = open_ledger_store(p, api_url)
    for _attempt in range(3):
        doc = store.read(name) or store_doc.empty_document(name)
        ledger = doc.get(trust.LEDGER_KEY) or {"org": api_url, "authorities": {}}
        if not change(ledger):
            return False
        rev = store_base.revision_of(doc)
        doc[trust.LEDGER_KEY] = ledger
        doc["revision"] = rev + 1
        doc["updated"] = store_doc.utc_iso()
        try:
            store.write(name, doc, rev)
        except store_base.StaleRevision:
            continue
        return True
    raise store_base.StaleRevision(f"The record of CAs added to the org ({store.where(name)}) kept changing while this"
                                   " task wrote it; run the task again.")


def needed_fingerprints(store, groups: list[str]) -> tuple[set[str], list[str]]:
    """The CA certificates in the chains (intermediates and root) of every group's current and previous material,
    and the groups that have no current material in the store (what they need cannot be known)."""
    keep: set[str] = set()
    missing: list[str] = []
    for group in groups:
        doc = store.read(group)
        if not doc or not doc.get("current"):
            missing.append(group)
            continue
        for slot in ("current", "previous"):
            material = doc.get(slot) or {}
            for part in ("chain", "root"):
                pem = material.get(part)
                if pem and pem.strip():
                    keep.update(_pem.fingerprint(c) for c in _pem.load_certificates(pem, f"{group}.{slot}.{part}"))
    return keep, missing


def work_pruned(module: AnsibleModule) -> dict:
    p = module.params
    # 1. Input, before anything is touched.
    if not p["store"]:
        raise InputError("store", "state=pruned needs the store, which records the CAs this module created")
    if not p["groups"]:
        raise InputError("groups", "state=pruned needs every certificate group whose SBCs this org trusts, so that no"
                                   " CA one of them needs is pruned")
    for name in ("certificate", "fingerprints", "group"):
        if p[name]:
            raise InputError(name, "is not used with state=pruned")
    if p["grace_period"] < 0:
        raise InputError("grace_period", "must be 0 or more days")
    groups = []
    for g in p["groups"]:
        try:
            groups.append(store_base.check_group(g))
        except InputError:
            raise InputError("groups", f"{g!r} is not a valid group name (1-128 letters, digits, '.', '_' or '-',"
                                       " starting with a letter or digit)") from None
    keep_extra = {trust.normalize_fingerprint(f, "keep_fingerprints") for f in p["keep_fingerprints"] or []}
    api_url = check_connection_params(p)
    store, ledger_name = open_ledger_store(p, api_url)
    # 2. Read: what every group needs (the store), the org's entries, the record of what this module created.
    keep, missing = needed_fingerprints(store, groups)  # the store first: it may make the org read unnecessary
    keep |= keep_extra
    if missing:
        # Not issued yet (or the wrong store): such a group is treated as not listed, so every CA recorded for it
        # is kept. The stricter reading; a new group must not fail the run's last step.
        module.warn(f"group(s) {', '.join(missing)} have no current certificate in the store ({store.location}):"
                    " the CAs recorded for them are kept")
    known = [g for g in groups if g not in missing]
    doc = store.read(ledger_name)
    ledger = copy.deepcopy((doc or {}).get(trust.LEDGER_KEY) or {"org": api_url, "authorities": {}})
    recorded = set(ledger.get("authorities", {}))
    now = datetime.datetime.now(datetime.timezone.utc)
    # The org is read only when a recorded CA could go now: a converged run pays no Genesys request here.
    client = existing = None
    if trust.prune_due(ledger, keep, known, now, p["grace_period"]):
        client = client_from_params(p, api_url)
        listing = client.call(API, "get_telephony_providers_edges_certificateauthorities")
        existing = [trust.summarize(client.to_wire(ca)) for ca in listing.entities or []]
    # 3. Decide (pure).
    actions, verdicts = trust.plan_prune(existing, ledger, keep, known, now, p["grace_period"])
    changed = bool(actions)
    # 4. Delete, then record the superseded times and forget what was deleted (even if a later delete failed).
    updated = False
    done: list[dict] = []

    def change(current: dict) -> bool:
        before = copy.deepcopy(current)
        trust.plan_prune(copy.deepcopy(existing), current, keep, known, now, p["grace_period"])
        trust.forget(current, done)
        return current != before

    if not module.check_mode:
        try:
            for act in actions:
                apply_action(client, act)
                done.append(act)
        finally:
            updated = update_ledger(p, api_url, change)
    left_alone = [{"name": e["name"], "id": e["id"], "fingerprint": e["fingerprint"]} for e in existing or []
                  if e["type"] == "REMOTE" and not recorded.intersection(e["fingerprints"])]
    result = {"changed": changed, "authorities": [trust.public(a) for a in actions], "prune": verdicts,
              "left_alone": left_alone, "groups_without_material": missing, "recorded": updated,
              "org_read": existing is not None,
              "api": stats(client) if client is not None else {"requests": 0, "tokens_minted": 0,
                                                               "rate_limit_waits": []}}
    if module._diff and existing is not None:
        result["diff"] = {"before": trust.diff_view(existing), "after": trust.diff_view(trust.apply_to(existing, actions))}
    return result


def apply_action(client, act: dict) -> None:
    models = load_sdk()["sdk"]
    if act["action"] == "create":
        body = models.DomainCertificateAuthority()
        body.name = act["name"]
        body.certificate = act["certificate"]
        body.type = "REMOTE"
        body.services = act["services"]
        created = client.call(API, "post_telephony_providers_edges_certificateauthorities", body)
        act["id"] = created.id
    elif act["action"] == "update":
        def read():
            return client.call(API, "get_telephony_providers_edges_certificateauthority", act["id"])

        def write(current):
            current.name = act["name"]
            current.services = act["services"]
            return client.call(API, "put_telephony_providers_edges_certificateauthority", act["id"], current)

        client.update_with_retry(read, write)
    elif act["action"] == "delete":
        try:
            client.call(API, "delete_telephony_providers_edges_certificateauthority", act["id"])
        except NotFound:
            pass  # already gone: the desired state is reached


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(
        state={"type": "str", "choices": ["present", "absent", "pruned"], "default": "present"},
        certificate={"type": "str"},
        fingerprints={"type": "list", "elements": "str"},
        name={"type": "str"},
        services={"type": "list", "elements": "str", "default": list(trust.DEFAULT_SERVICES)},
        allow_expired_ca={"type": "bool", "default": False},
        store={"type": "dict", "options": store_options()},
        group={"type": "str"},
        groups={"type": "list", "elements": "str"},
        grace_period={"type": "int", "default": trust.DEFAULT_GRACE_DAYS},
        keep_fingerprints={"type": "list", "elements": "str"},
    )
    return spec


def store_options() -> dict:
    """The store's location options (certificate_store's, without group and passphrase: no key is read here)."""
    spec = store_doc.store_argspec()
    return {k: spec[k] for k in ("backend", "path", "s3")}


def main() -> None:
    module = ByocModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
