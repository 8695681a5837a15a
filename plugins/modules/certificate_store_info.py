#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_store_info
short_description: Read a certificate group's material and renewal state from the certificate store
version_added: 1.0.0
description:
  - Reads what M(byoc.certificates.certificate_store) keeps for one certificate group - the current and previous
    material, the ACME account, the ARI data, the failure backoff and the last order URL.
  - "Never returns a private key unless O(return_private_keys=true), and then only if the task itself has
    C(no_log: true)."
  - With O(passphrase), checks that the stored private keys decrypt and match their certificates (RV(current.key_matches)).
  - With O(export_dir), writes the material into files for other modules (community.crypto). Private keys are
    written exactly as stored, that is encrypted with O(passphrase); they are never written in clear.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._store
  - byoc.certificates._attributes.ACTIONGROUP_STORE
  - byoc.certificates._attributes
  - byoc.certificates._attributes.INFO_MODULE
options:
  account_directory:
    description: Also report the ACME account kept for this ACME directory URL.
    type: str
  export_dir:
    description:
      - A directory (created with mode V(0700) if missing) to write the material into, each file mode V(0600).
      - C(cert.pem), C(chain.pem), C(fullchain.pem), C(root.pem) (when a root is kept), C(privkey.pem) (current),
        C(previous-*.pem) (previous) and C(account.key) (for O(account_directory)). Keys are encrypted with O(passphrase).
      - This writes on the controller only; the store is not changed.
    type: path
  return_private_keys:
    description:
      - Also return the decrypted private keys (RV(current.privatekey), the same key in RV(previous), and RV(account.key)).
      - "Needs O(passphrase), and the task must set C(no_log: true); otherwise the module fails without reading keys."
    type: bool
    default: false
  now:
    description: The time to use instead of the clock to tell whether the group is in its backoff (ISO 8601).
    type: str
notes:
  - Runs on the controller.
seealso:
  - module: byoc.certificates.certificate_store
  - module: byoc.certificates.certificate_renewal_decision
"""

EXAMPLES = r"""
- name: Read the group's state
  byoc.certificates.certificate_store_info:
    path: /var/lib/byoc/store
    group: sbc-emea
    passphrase: "{{ vault_store_passphrase }}"
  register: stored

- name: Show the current certificate's expiry
  ansible.builtin.debug:
    msg: "{{ stored.current.not_after if stored.exists and stored.current else 'nothing stored yet' }}"

- name: Fetch the previous key and certificate for a rollback (keys only with no_log)
  byoc.certificates.certificate_store_info:
    path: /var/lib/byoc/store
    group: sbc-emea
    passphrase: "{{ vault_store_passphrase }}"
    return_private_keys: true
  no_log: true
  register: rollback
"""

RETURN = r"""
exists:
  description: Whether the store has a document for the group.
  returned: always
  type: bool
group:
  description: The group.
  returned: always
  type: str
location:
  description: Where the group's document lives.
  returned: always
  type: str
revision:
  description: The document's revision (0 if it does not exist).
  returned: always
  type: int
current:
  description: The current material, or V(null).
  returned: always
  type: dict
  contains:
    certificate:
      description: The certificate (PEM).
      type: str
    chain:
      description: The intermediate certificates (PEM).
      type: str
    fullchain:
      description: The certificate and its chain (PEM), without the root.
      type: str
    root:
      description:
        - The root CA certificate (PEM) that anchors the chain, as kept with the material by
          M(byoc.certificates.certificate_store) (O(byoc.certificates.certificate_store#module:root)). ACME servers do not send it.
        - V(null) when no root was kept.
      type: str
    root_fingerprint:
      description: SHA-256 of the root's DER, or V(null).
      type: str
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
      description: Start of validity (UTC).
      type: str
    not_after:
      description: End of validity (UTC).
      type: str
    has_privatekey:
      description: Whether a private key is stored with the certificate.
      type: bool
    key_matches:
      description: Whether the stored key decrypts with O(passphrase) and belongs to the certificate; V(null) without O(passphrase).
      type: bool
    privatekey:
      description: The decrypted private key (PEM). Only with O(return_private_keys) (and C(no_log)).
      type: str
previous:
  description: The previous material (kept for rollback), like RV(current), or V(null).
  returned: always
  type: dict
account:
  description: The account kept for O(account_directory).
  returned: when O(account_directory) is given
  type: dict
  contains:
    exists:
      description: Whether an account key is stored for that directory.
      type: bool
    uri:
      description: The account URI.
      type: str
    key_fingerprint:
      description: SHA-256 of the account's public key.
      type: str
    key:
      description: The decrypted account key (PEM). Only with O(return_private_keys) (and C(no_log)).
      type: str
ari:
  description: The stored ARI data, or V(null).
  returned: always
  type: dict
backoff:
  description: The failure backoff state, or V(null).
  returned: always
  type: dict
  contains:
    failures:
      description: Consecutive failures.
      type: int
    next_attempt:
      description: The earliest time the ACME server may be contacted again for the group.
      type: str
    in_window:
      description: Whether that time is still in the future.
      type: bool
    last_error:
      description: The last failure's message.
      type: str
last_order_url:
  description: The URL of the last order placed for the group.
  returned: always
  type: str
lock:
  description: The group's lock (owner, acquired, expires), or V(null).
  returned: always
  type: dict
files:
  description: The files written to O(export_dir) (only those for material that exists).
  returned: when O(export_dir) is given
  type: dict
  sample: {cert: /tmp/x/cert.pem, chain: /tmp/x/chain.pem, fullchain: /tmp/x/fullchain.pem, privkey: /tmp/x/privkey.pem}
"""

import os


from ansible_collections.byoc.certificates.plugins.module_utils import _pem, _renewal
from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module
from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod


def _write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _material(stored, passphrase, want_keys, where):
    out = doc_mod.summarize(stored)
    if out is None:
        return None, None
    out["key_matches"] = None
    key = None
    if passphrase and stored.get("privatekey"):
        key = doc_mod.decrypt_stored_key(stored["privatekey"], passphrase, where)
        cert = _pem.load_certificate(stored["certificate"], where)
        out["key_matches"] = _pem.key_matches_certificate(key, cert)
    elif passphrase:
        out["key_matches"] = False
    if want_keys and key is not None:
        out["privatekey"] = _pem.key_to_pem(key)
    return out, key


def work(module):
    p = module.params
    now = _renewal.time_option(p["now"], "now") if p["now"] else _renewal.utcnow()
    if p["return_private_keys"]:
        doc_mod.require_passphrase(p["passphrase"], "to return private keys")
        if not module.no_log:
            raise InputError("return_private_keys", "returns decrypted private keys, so the task must set"
                                                    " 'no_log: true'; nothing was read")
    passphrase = doc_mod.require_passphrase(p["passphrase"], "") if p["passphrase"] else None
    store = doc_mod.open_store(p)
    group = p["group"]
    doc = store.read(group)
    lock = store.read_lock(group)
    result = {
        "changed": False, "group": group, "location": store.where(group), "exists": doc is not None,
        "revision": 0, "current": None, "previous": None, "ari": None, "backoff": None, "last_order_url": None,
        "lock": None if not lock else {k: v for k, v in lock.items() if not k.startswith("_")},
    }
    doc = doc or doc_mod.empty_document(group)
    want = p["return_private_keys"]
    cur = _material(doc.get("current"), passphrase, want, f"the current key of {group}")[0]
    prev = _material(doc.get("previous"), passphrase, want, f"the previous key of {group}")[0]
    backoff = doc.get("backoff")
    if backoff:
        waiting, nxt = _renewal.in_backoff(backoff, now)
        backoff = dict(backoff, in_window=waiting,
                       seconds_left=max(0, int((nxt - now).total_seconds())) if nxt else 0)
    result.update(revision=doc.get("revision") or 0, current=cur, previous=prev, ari=doc.get("ari"),
                  backoff=backoff, last_order_url=doc.get("last_order_url"))
    acct = None
    if p["account_directory"]:
        stored = (doc.get("accounts") or {}).get(p["account_directory"]) or {}
        acct = {"exists": bool(stored.get("key")), "uri": stored.get("uri"),
                "key_fingerprint": stored.get("key_fingerprint"), "directory": p["account_directory"]}
        if passphrase and stored.get("key"):
            akey = doc_mod.decrypt_stored_key(stored["key"], passphrase, f"the account key of {group}")
            if want:
                acct["key"] = _pem.key_to_pem(akey)
        result["account"] = acct

    if p["export_dir"]:
        d = p["export_dir"]
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
            files = {}
            for prefix, stored in (("", doc.get("current")), ("previous-", doc.get("previous"))):
                if not stored:
                    continue
                for name, key in (("cert", "certificate"), ("chain", "chain"), ("fullchain", "fullchain"),
                                  ("root", "root"), ("privkey", "privatekey")):
                    if stored.get(key):
                        path = os.path.join(d, f"{prefix}{name}.pem")
                        _write(path, stored[key])
                        files[f"{prefix.replace('-', '_')}{name}"] = path
            stored = (doc.get("accounts") or {}).get(p["account_directory"] or "") or {}
            if stored.get("key"):
                path = os.path.join(d, "account.key")
                _write(path, stored["key"])
                files["account_key"] = path
        except OSError as exc:
            raise ApiError(f"Could not write the exported material to {d}: {exc}. export_dir must be a writable"
                           " directory on the controller.", location=d) from None
        result["files"] = files
    return result


def main():
    argument_spec = doc_mod.store_argspec()
    argument_spec.update(
        account_directory={"type": "str"},
        export_dir={"type": "path"},
        return_private_keys={"type": "bool", "default": False},
        now={"type": "str"},
    )
    module = ByocModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
