#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_store
short_description: Keep a certificate group's material and renewal state in the certificate store
version_added: 1.0.0
description:
  - Writes one certificate group's state to the store that keeps it between (ephemeral) AWX jobs.
  - Each group keeps its B(current) and B(previous) material (certificate, chain, full chain and private key),
    its ACME account key and URI per ACME directory, the ARI data, the failure backoff state and the last order URL.
  - New material becomes current and the old current becomes previous (kept for rollback). Material is compared
    by the SHA-256 fingerprint of the certificate's DER, so storing the same certificate again changes nothing.
  - Private keys are encrypted at rest with O(passphrase) (PKCS#8); they are never returned.
  - Every write replaces the group's document atomically; a run killed half-way leaves the previous document.
  - A lock (O(lock)) stops two concurrent runs from issuing the same group twice. While another run holds the
    group's lock, every write fails.
  - All input (PEM, key, passphrase) is checked before the store is read or written. Certificate material goes
    through the collection's shared gate and gets the same refusal, in the same words, as in every module - key
    material in a certificate option (never echoed), text that is not a certificate, a CA certificate in
    O(certificate), a second leaf, a leaf in O(chain), and a key that does not open or does not match the
    certificate. Validity dates are not judged (a store keeps what was issued; the deploy modules refuse an
    expired certificate).
  - A O(passphrase) that does not open the group's existing keys is refused, and nothing is written; one document
    never mixes passphrases (that would lose the rollback key). Changing the passphrase is the explicit O(new_passphrase).
  - Every write is a compare-and-swap on the document revision. If another writer changed the group after this
    task read it, the task fails and writes nothing; run it again. Concurrent writers never remove each other's
    temporary files.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._store
  - byoc.certificates._attributes.ACTIONGROUP_STORE
  - byoc.certificates._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows fingerprints, dates, names and backoff state, never key material.
  idempotent:
    support: full
options:
  certificate:
    description:
      - The new certificate (PEM). With O(privatekey_content) or O(privatekey_path) it becomes the current material.
      - If it is already the current certificate (same fingerprint), nothing changes.
    type: str
  chain:
    description: The intermediate certificates (PEM) that go with O(certificate).
    type: str
  fullchain:
    description:
      - The certificate followed by its chain (PEM). Its first certificate must be O(certificate).
      - If O(chain) is not given, the chain is taken from here.
    type: str
  privatekey_content:
    description:
      - The private key of O(certificate), as PEM, clear or encrypted with O(passphrase) or O(privatekey_passphrase).
      - Mutually exclusive with O(privatekey_path).
    type: str
  privatekey_path:
    description: A file holding the private key of O(certificate) (clear or encrypted PEM).
    type: path
  privatekey_passphrase:
    description: The passphrase of the given private key if it is encrypted with another passphrase than O(passphrase).
    type: str
  order_uri:
    description: The ACME order that produced O(certificate); also recorded as the group's last order URL.
    type: str
  account:
    description:
      - Record the group's ACME account for one ACME directory.
    type: dict
    suboptions:
      directory:
        description: The ACME directory URL this account belongs to.
        type: str
        required: true
      key_content:
        description: The account private key (PEM, clear or encrypted with O(passphrase) or O(account.key_passphrase)).
        type: str
      key_path:
        description: A file holding the account private key.
        type: path
      key_passphrase:
        description: The passphrase of the given account key if it differs from O(passphrase).
        type: str
      uri:
        description: The account URI the ACME server returned.
        type: str
  ari:
    description:
      - ARI (RFC 9773) data to keep for the group, for example from C(community.crypto.acme_ari_info).
      - Stored as given; the keys the collection uses are C(cert_id), C(window_start), C(window_end),
        C(explanation_url) and C(retry_after).
    type: dict
  last_order_url:
    description: The URL of the last ACME order placed for the group (also when it failed).
    type: str
  failure:
    description:
      - Record a failed issuance attempt. The group then backs off per O(backoff_schedule); a later step of the
        schedule follows each consecutive failure.
      - A C(rateLimited) error's "retry after <time>" or an explicit O(failure.retry_after) is honoured when it is later.
    type: dict
    suboptions:
      msg:
        description: What failed (the failed task's message). It is stored and shown by runs that skip the group.
        type: str
        required: true
      retry_after:
        description: A C(Retry-After) value (seconds or an HTTP date) from the ACME server, if known.
        type: str
  clear_backoff:
    description: Forget the failure backoff (after a successful issuance). Storing new material also clears it.
    type: bool
    default: false
  backoff_schedule:
    description:
      - Seconds to wait after the 1st, 2nd, 3rd, ... consecutive failure; the last value repeats.
      - The default follows Let's Encrypt's advice, 1 minute, 10 minutes, 100 minutes, then daily.
    type: list
    elements: int
    default: [60, 600, 6000, 86400]
  lock:
    description:
      - V(acquire) takes the group's lock for O(lock_owner) (or refreshes it if that owner already holds it). It
        fails, naming the holder, when another run holds a lock that has not expired.
      - V(release) gives the lock back after the writes of this task.
      - Without this option the lock is left alone, but writes still fail while another owner holds it.
    type: str
    choices: [acquire, release]
  lock_owner:
    description:
      - Who holds the lock, for example the AWX job ID. Required with O(lock).
      - Writes by the lock's owner are allowed while the lock is held.
    type: str
  lock_ttl:
    description: Seconds after which a lock counts as abandoned (for example after a crash) and may be taken over.
    type: int
    default: 3600
  now:
    description:
      - The time to use instead of the clock for the backoff arithmetic (ISO 8601). For tests and simulations.
    type: str
  new_passphrase:
    description:
      - Change the store passphrase of the group. O(passphrase) must be the current one; every private key of the
        group (current, previous and every ACME account key) is re-encrypted with this one in the same write.
      - Keys given in the same task are stored under this passphrase.
      - Idempotent. When the group's keys already open with O(new_passphrase) (an earlier run changed it),
        nothing changes. When neither passphrase opens them, the task fails and writes nothing.
      - At least 12 characters, different from O(passphrase).
    type: str
  expected_revision:
    description:
      - Write only if the group's document is still at this revision (RV(revision) of an earlier
        M(byoc.certificates.certificate_store_info) or M(byoc.certificates.certificate_store) result), V(0) for a group that must not exist yet.
      - Otherwise the task fails, names the revision it found, and writes nothing.
      - Without it, the task still refuses to overwrite a change that another writer made between this task's own
        read and its write.
    type: int
  root:
    description:
      - The root CA certificate (PEM) that anchors the chain of the current material (or of O(certificate) when
        given in the same task). It is kept with that material, so the previous material keeps its own root for
        rollback. Genesys Cloud and the Ribbon SBC Edge need the root, which ACME servers do not send in the chain.
      - It must be one self-signed CA certificate, and the chain from the certificate must lead to it (checked by
        the shared gate); an expired root is kept with a warning.
    type: str
notes:
  - Runs on the controller.
seealso:
  - module: byoc.certificates.certificate_store_info
  - module: byoc.certificates.certificate_renewal_decision
"""

EXAMPLES = r"""
- name: Keep the new certificate (the old one becomes previous)
  byoc.certificates.certificate_store:
    path: /var/lib/byoc/store
    group: sbc-emea
    passphrase: "{{ vault_store_passphrase }}"
    certificate: "{{ finalized.selected_chain.cert }}"
    chain: "{{ finalized.selected_chain.chain }}"
    privatekey_path: "{{ workdir }}/new.key"
    order_uri: "{{ order.order_uri }}"

- name: Record a failure (the group backs off 1 min, 10 min, 100 min, then daily)
  byoc.certificates.certificate_store:
    backend: s3
    s3:
      bucket: byoc-certificates
      prefix: prod/
    group: sbc-emea
    failure:
      msg: "{{ ansible_failed_result.msg }}"

- name: Change the store passphrase of a group (current, previous and account keys together)
  byoc.certificates.certificate_store:
    path: /var/lib/byoc/store
    group: sbc-emea
    passphrase: "{{ vault_store_passphrase_old }}"
    new_passphrase: "{{ vault_store_passphrase }}"

- name: Keep the root CA with the current certificate
  byoc.certificates.certificate_store:
    path: /var/lib/byoc/store
    group: sbc-emea
    root: "{{ lookup('ansible.builtin.file', '/etc/pki/acme-root.pem') }}"

- name: Take the group's lock before ordering
  byoc.certificates.certificate_store:
    path: /var/lib/byoc/store
    group: sbc-emea
    lock: acquire
    lock_owner: "awx-{{ tower_job_id | default('manual') }}"
  register: store_lock
"""

RETURN = r"""
group:
  description: The group.
  returned: always
  type: str
  sample: sbc-emea
location:
  description: Where the group's document lives.
  returned: always
  type: str
  sample: /var/lib/byoc/store/sbc-emea/state.json
revision:
  description: The document's revision after this task (it grows by one with every write).
  returned: always
  type: int
  sample: 4
rotated:
  description: Whether new material became current (and the old current became previous).
  returned: always
  type: bool
current:
  description: The current material, without PEM and without the key. V(null) if there is none.
  returned: always
  type: dict
  contains:
    fingerprint:
      description: SHA-256 of the certificate's DER, lower-case hex.
      type: str
    key_fingerprint:
      description: SHA-256 of the public key's DER.
      type: str
    key_type:
      description: For example V(rsa-2048) or V(ecdsa-secp256r1).
      type: str
    names:
      description: The certificate's DNS names.
      type: list
      elements: str
    not_before:
      description: Start of validity (UTC, ISO 8601).
      type: str
    not_after:
      description: End of validity (UTC, ISO 8601).
      type: str
    root_fingerprint:
      description: SHA-256 of the root CA certificate kept with the material (O(root)), or V(null).
      type: str
previous:
  description: The previous material, like RV(current). V(null) if there is none.
  returned: always
  type: dict
passphrase_changed:
  description: Whether this task re-encrypted the group's keys with O(new_passphrase).
  returned: always
  type: bool
account:
  description: The account recorded for O(account.directory) (URI and key fingerprint, never the key).
  returned: when O(account) is given
  type: dict
backoff:
  description: The failure backoff state; V(null) when the group is not backing off.
  returned: always
  type: dict
  contains:
    failures:
      description: Consecutive failures.
      type: int
    next_attempt:
      description: The earliest time at which the ACME server may be contacted again for this group.
      type: str
    retry_after:
      description: The server's Retry-After, if one was honoured.
      type: str
    last_error:
      description: The last failure's message.
      type: str
last_order_url:
  description: The last order URL recorded.
  returned: always
  type: str
lock:
  description: The group's lock after this task (owner and expiry), or V(null).
  returned: always
  type: dict
"""

import copy

from ansible_collections.byoc.certificates.plugins.module_utils import _renewal
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module
from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod
from ansible_collections.byoc.certificates.plugins.module_utils._store.base import (
    LockHeld, lock_expired, revision_of, stale,
)


def _read_file(path, field):
    try:
        with open(path, "r", encoding="ascii") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(field, f"could not read {path}: {exc}") from None


def _public_lock(lock):
    return None if not lock else {k: v for k, v in lock.items() if not k.startswith("_")}


def _view(doc):
    """What the diff shows: no PEM, no keys."""
    return {
        "current": doc_mod.summarize(doc.get("current"), include_pem=False),
        "previous": doc_mod.summarize(doc.get("previous"), include_pem=False),
        "accounts": {d: {"uri": a.get("uri"), "key_fingerprint": a.get("key_fingerprint")}
                     for d, a in sorted((doc.get("accounts") or {}).items())},
        "ari": doc.get("ari"),
        "backoff": doc.get("backoff"),
        "last_order_url": doc.get("last_order_url"),
    }


def work(module):
    p = module.params
    now = _renewal.time_option(p["now"], "now") if p["now"] else _renewal.utcnow()
    if p["lock"] and not p["lock_owner"]:
        raise InputError("lock_owner", f"lock={p['lock']} needs lock_owner (who holds the lock, e.g. the job ID)")
    if p["lock_ttl"] < 1:
        raise InputError("lock_ttl", "must be at least 1 second")
    if any(s < 0 for s in p["backoff_schedule"]) or not p["backoff_schedule"]:
        raise InputError("backoff_schedule", "must be a non-empty list of seconds >= 0")

    if p["expected_revision"] is not None and p["expected_revision"] < 0:
        raise InputError("expected_revision", "must be 0 (the group does not exist yet) or a revision number")
    if p["new_passphrase"] is not None:
        doc_mod.require_passphrase(p["passphrase"], "to change it (the passphrase the group is stored with now)")
        doc_mod.require_passphrase(p["new_passphrase"], "as the new passphrase", field="new_passphrase")
    # Keys written by this task are encrypted with the new passphrase when it changes.
    write_passphrase = p["new_passphrase"] or p["passphrase"]
    tried = [p["privatekey_passphrase"], p["passphrase"], p["new_passphrase"]]

    # 1. Validate every input before the store is touched.
    material = None
    key_given = p["privatekey_content"] or p["privatekey_path"]
    if p["certificate"] or key_given:
        if not (p["certificate"] and key_given):
            raise InputError("certificate" if not p["certificate"] else "privatekey_content",
                             "certificate and a private key (privatekey_content or privatekey_path) go together")
        doc_mod.require_passphrase(p["passphrase"], "to store a private key")
        key_pem = p["privatekey_content"] or _read_file(p["privatekey_path"], "privatekey_path")
        material, _key = doc_mod.build_material(
            certificate=p["certificate"], chain=p["chain"], fullchain=p["fullchain"], key_pem=key_pem,
            key_passphrases=tried, passphrase=write_passphrase, order_uri=p["order_uri"],
            key_field="privatekey_content" if p["privatekey_content"] else "privatekey_path")
    account = None
    if p["account"]:
        a = p["account"]
        account = {"uri": a.get("uri")}
        if a.get("key_content") or a.get("key_path"):
            doc_mod.require_passphrase(p["passphrase"], "to store an account key")
            pem = a.get("key_content") or _read_file(a["key_path"], "account.key_path")
            candidates = [a.get("key_passphrase"), p["passphrase"], p["new_passphrase"]]
            akey = doc_mod.load_key(pem, "account.key_content", candidates)
            account.update(key=doc_mod.encrypt_key(akey, write_passphrase),
                           key_fingerprint=doc_mod.public_key_fingerprint(akey))

    store = doc_mod.open_store(p)
    group = p["group"]
    result = {"changed": False, "group": group, "location": store.where(group), "rotated": False}

    # 2. The lock.
    lock = store.read_lock(group)
    if p["lock"] == "acquire":
        if module.check_mode:
            if lock and lock.get("owner") != p["lock_owner"] and not lock_expired(lock, now):
                raise LockHeld(f"Group {group} is locked by {lock.get('owner')} until {lock.get('expires')}"
                               f" in {store.location}.", lock=_public_lock(lock))
            result["changed"] = True
        else:
            lock = store.acquire(group, p["lock_owner"], p["lock_ttl"], now=now if p["now"] else None)[0]
            result["changed"] = True
    elif lock and lock.get("owner") != p["lock_owner"] and not lock_expired(lock, now):
        wants_write = any(p[k] for k in ("certificate", "account", "ari", "last_order_url", "failure", "clear_backoff"))
        if wants_write:
            raise LockHeld(f"Group {group} is locked by another run (owner {lock.get('owner')}, until"
                           f" {lock.get('expires')}) in {store.location}; this task did not write. Pass that run's"
                           " lock_owner, or wait until it finishes.", lock=_public_lock(lock))

    # 3. Apply the changes to a copy of the document.
    stored = store.read(group)
    read_revision = revision_of(stored)
    if p["expected_revision"] is not None and p["expected_revision"] != read_revision:
        raise stale(group, store.where(group), p["expected_revision"], stored)
    before = stored or doc_mod.empty_document(group)
    # issue 10: a passphrase that does not open the existing document is refused before anything is written;
    # new_passphrase re-encrypts every key of the group (current, previous, accounts) together.
    _effective, rekey = doc_mod.check_passphrase(stored, group, store.where(group), p["passphrase"],
                                                 p["new_passphrase"])
    after = copy.deepcopy(before)
    if rekey:
        doc_mod.reencrypt(after, p["passphrase"], p["new_passphrase"])
    result["passphrase_changed"] = rekey
    if material:
        if doc_mod.make_current(after, material):
            result["rotated"] = True
        if p["order_uri"]:
            after["last_order_url"] = p["order_uri"]
    if p["root"]:
        target = after.get("current")
        if not target:
            raise InputError("root", f"group {group} has no current certificate to attach the root to; give it with"
                                     " certificate (or store the certificate first)")
        root_pem, root_fp, warnings = doc_mod.check_root(p["root"], target)
        for warning in warnings:
            module.warn(warning)
        if target.get("root_fingerprint") != root_fp:
            target["root"], target["root_fingerprint"] = root_pem, root_fp
    if account is not None:
        directory = p["account"]["directory"]
        old = (after.get("accounts") or {}).get(directory) or {}
        new = dict(old)
        if account.get("uri"):
            new["uri"] = account["uri"]
        if account.get("key") and old.get("key_fingerprint") != account["key_fingerprint"]:
            new["key"], new["key_fingerprint"] = account["key"], account["key_fingerprint"]
            new["created"] = doc_mod.utc_iso(now)
        after.setdefault("accounts", {})[directory] = new
        result["account"] = {"directory": directory, "uri": new.get("uri"), "key_fingerprint": new.get("key_fingerprint")}
    if p["ari"] is not None:
        ari = dict(p["ari"])
        old_ari = dict(before.get("ari") or {})
        old_ari.pop("checked", None)
        if old_ari != ari:
            ari["checked"] = doc_mod.utc_iso(now)
            after["ari"] = ari
    if p["last_order_url"]:
        after["last_order_url"] = p["last_order_url"]
    if p["failure"]:
        after["backoff"] = _renewal.record_failure(before.get("backoff"), now, p["failure"]["msg"],
                                                   retry_after=p["failure"].get("retry_after"),
                                                   schedule=p["backoff_schedule"])
    elif p["clear_backoff"]:
        after["backoff"] = None

    changed_doc = rekey or _view(before) != _view(after) or before.get("accounts") != after.get("accounts")
    if changed_doc:
        after["revision"] = read_revision + 1
        after["updated"] = doc_mod.utc_iso()
        result["changed"] = True
        if not module.check_mode:
            # compare-and-swap: refused (StaleRevision, nothing written) if another writer got in since the read
            store.write(group, after, read_revision)

    # 4. Release after the writes.
    if p["lock"] == "release":
        if lock and lock.get("owner") == p["lock_owner"]:
            if not module.check_mode:
                store.release(group, p["lock_owner"])
            result["changed"] = True
            lock = None
        elif lock:
            raise LockHeld(f"Group {group}: the lock in {store.location} belongs to {lock.get('owner')}, not to"
                           f" {p['lock_owner']}; it was not released.", lock=_public_lock(lock))

    result.update(
        revision=after.get("revision") or 0,
        current=doc_mod.summarize(after.get("current"), include_pem=False),
        previous=doc_mod.summarize(after.get("previous"), include_pem=False),
        backoff=after.get("backoff"),
        last_order_url=after.get("last_order_url"),
        lock=_public_lock(lock),
    )
    if module._diff:
        result["diff"] = {"before": _view(before), "after": _view(after)}
    return result


def main():
    argument_spec = doc_mod.store_argspec()
    argument_spec.update(
        certificate={"type": "str"},
        chain={"type": "str"},
        fullchain={"type": "str"},
        privatekey_content={"type": "str", "no_log": True},
        privatekey_path={"type": "path"},
        privatekey_passphrase={"type": "str", "no_log": True},
        order_uri={"type": "str"},
        account={"type": "dict", "options": {
            "directory": {"type": "str", "required": True},
            "key_content": {"type": "str", "no_log": True},
            "key_path": {"type": "path"},
            "key_passphrase": {"type": "str", "no_log": True},
            "uri": {"type": "str"},
        }, "mutually_exclusive": [["key_content", "key_path"]]},
        ari={"type": "dict"},
        last_order_url={"type": "str"},
        failure={"type": "dict", "options": {
            "msg": {"type": "str", "required": True},
            "retry_after": {"type": "str"},
        }},
        clear_backoff={"type": "bool", "default": False},
        backoff_schedule={"type": "list", "elements": "int", "default": [60, 600, 6000, 86400]},
        lock={"type": "str", "choices": ["acquire", "release"]},
        lock_owner={"type": "str"},
        lock_ttl={"type": "int", "default": 3600},
        now={"type": "str"},
        new_passphrase={"type": "str", "no_log": True},
        expected_revision={"type": "int"},
        root={"type": "str"},
    )
    module = ByocModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[["privatekey_content", "privatekey_path"], ["failure", "clear_backoff"]],
    )
    run_module(module, work)


if __name__ == "__main__":
    main()
