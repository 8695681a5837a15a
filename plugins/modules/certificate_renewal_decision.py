#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_renewal_decision
short_description: Decide whether a certificate group must be renewed now
version_added: 1.0.0
description:
  - A pure decision from data passed in; it contacts nothing and changes nothing.
  - "Renews when: the stored material is missing, does not match its key, or has expired; the names or the key type
    changed; renewal is forced; the ARI (RFC 9773) suggested window has reached the group's point in it; or, without
    ARI, less than O(renew_fraction) of the certificate's lifetime is left (O(short_lived_fraction) for certificates
    shorter than O(short_lived_days)). The lifetime is read from the certificate; 90 days is never assumed."
  - "Stagger: each group gets a fixed point derived from a hash of its name. Inside an ARI window the renewal happens
    at that point of the window; with the lifetime rule the renewal point moves earlier by up to O(stagger_fraction)
    of the lifetime. A fleet therefore does not renew on the same day, and a group's day does not change between runs."
  - "Backoff: when a renewal is due but the group's failure backoff (from the store) has not expired, the result is
    RV(skip=true) with a message, and the ACME server must not be contacted."
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._attributes.ACTIONGROUP_STORE
  - byoc.certificates._attributes
  - byoc.certificates._attributes.INFO_MODULE
options:
  group:
    description: The certificate group (its name seeds the stagger).
    type: str
    required: true
  names:
    description: The DNS names the group's certificate must carry.
    type: list
    elements: str
    required: true
  current:
    description:
      - The current material as returned by M(byoc.certificates.certificate_store_info) (RV(byoc.certificates.certificate_store_info#module:current)),
        or V(null) when there is none.
      - Uses C(certificate) (or C(not_before) and C(not_after)), C(names), C(key_matches), C(has_privatekey) and C(key_type).
    type: dict
  key_type:
    description: The key type the group wants, for example V(rsa-2048) or V(ecdsa-secp256r1). A change triggers renewal.
    type: str
  force:
    description: Renew regardless of dates (still subject to the backoff, see O(ignore_backoff)).
    type: bool
    default: false
  backoff:
    description: The group's backoff state as returned by M(byoc.certificates.certificate_store_info).
    type: dict
  ignore_backoff:
    description: Renew even inside the backoff window. This can burn a CA's rate limits; use it by hand only.
    type: bool
    default: false
  use_ari:
    description: Use the ARI window in O(ari) when it is given. Without ARI data the lifetime rule applies.
    type: bool
    default: true
  ari:
    description:
      - ARI data for the current certificate, for example mapped from C(community.crypto.acme_ari_info)
        (C(renewal_info.suggestedWindow)) and C(community.crypto.acme_certificate_renewal_info) (C(cert_id)).
    type: dict
    suboptions:
      window_start:
        description: Start of the suggested window (ISO 8601).
        type: str
      window_end:
        description: End of the suggested window (ISO 8601).
        type: str
      cert_id:
        description: The RFC 9773 certificate identifier, sent as C(replaces) on the renewal order.
        type: str
      explanation_url:
        description: The server's explanation URL, if any (shown in the message).
        type: str
  renew_fraction:
    description: Renew when less than this fraction of the lifetime is left (default 1/3).
    type: float
    default: 0.3333
  short_lived_fraction:
    description: The fraction used for certificates whose lifetime is shorter than O(short_lived_days).
    type: float
    default: 0.5
  short_lived_days:
    description: Lifetimes shorter than this many days use O(short_lived_fraction).
    type: float
    default: 10
  stagger_fraction:
    description: The largest share of the lifetime by which a group's lifetime-based renewal point is moved earlier. V(0) turns the stagger off.
    type: float
    default: 0.1
  now:
    description: The time to decide for, instead of the clock (ISO 8601). For tests and planning.
    type: str
notes:
  - Runs on the controller.
seealso:
  - module: byoc.certificates.certificate_store_info
  - module: community.crypto.acme_ari_info
"""

EXAMPLES = r"""
- name: Decide
  byoc.certificates.certificate_renewal_decision:
    group: sbc-emea
    names: [sbc1.example.com, sbc2.example.com]
    current: "{{ stored.current }}"
    backoff: "{{ stored.backoff }}"
    key_type: ecdsa-secp256r1
    ari:
      window_start: "{{ ari.renewal_info.suggestedWindow.start | default(omit) }}"
      window_end: "{{ ari.renewal_info.suggestedWindow.end | default(omit) }}"
      cert_id: "{{ renewal.cert_id | default(omit) }}"
  register: decision

- name: Issue only when needed
  ansible.builtin.debug:
    msg: "{{ decision.msg }}"
  when: decision.renew
"""

RETURN = r"""
renew:
  description: Whether to renew now.
  returned: always
  type: bool
skip:
  description: A renewal is due but the group is in its failure backoff; do not contact the ACME server.
  returned: always
  type: bool
reasons:
  description: Why a renewal is due (empty when it is not).
  returned: always
  type: list
  elements: str
msg:
  description: One sentence for the user.
  returned: always
  type: str
trigger:
  description: V(ari) or V(lifetime) - which rule set RV(renew_at); V(null) when there is no certificate.
  returned: always
  type: str
renew_at:
  description: The group's renewal point (UTC, ISO 8601), or V(null) without a certificate.
  returned: always
  type: str
replaces_cert_id:
  description: The ARI certificate ID to send as C(replaces) on the renewal order, if ARI is in use.
  returned: always
  type: str
stagger_offset_seconds:
  description: How much earlier than the plain lifetime rule this group renews.
  returned: always
  type: int
renew_fraction:
  description: The lifetime fraction that applied.
  returned: always
  type: float
lifetime_seconds:
  description: The current certificate's lifetime.
  returned: always
  type: int
remaining_fraction:
  description: The share of the lifetime left at O(now).
  returned: always
  type: float
next_attempt:
  description: When the backoff ends, if RV(skip).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.byoc.certificates.plugins.module_utils import _pem, _renewal
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


def _time(value, field):
    try:
        return _renewal.parse_time(value, field)
    except ValueError as exc:
        raise InputError(field, str(exc).split(": ", 1)[-1]) from None


def _current(cur):
    if not cur:
        return None
    out = {"names": cur.get("names"), "key_matches": cur.get("key_matches"), "key_type": cur.get("key_type")}
    if cur.get("has_privatekey") is False:
        out["key_missing"] = True
    if cur.get("certificate"):
        cert = _pem.load_certificate(cur["certificate"], "current.certificate")
        out["not_before"], out["not_after"] = cert.not_valid_before_utc, cert.not_valid_after_utc
        if out["names"] is None:
            out["names"] = [n.split(":", 1)[1] for n in _pem.subject_alt_names(cert) if n.startswith("DNS:")]
    else:
        out["not_before"] = _time(cur.get("not_before"), "current.not_before")
        out["not_after"] = _time(cur.get("not_after"), "current.not_after")
        if not out["not_before"] or not out["not_after"]:
            raise InputError("current", "needs certificate, or not_before and not_after")
    if out["names"] is None:
        out["names"] = []
    return out


def work(module):
    p = module.params
    for field in ("renew_fraction", "short_lived_fraction", "stagger_fraction"):
        if not 0 <= p[field] < 1:
            raise InputError(field, f"must be at least 0 and below 1, got {p[field]}")
    if p["short_lived_days"] < 0:
        raise InputError("short_lived_days", "must not be negative")
    names = [n for n in p["names"] if n and n.strip()]
    if not names:
        raise InputError("names", "give at least one DNS name")
    now = _time(p["now"], "now") if p["now"] else _renewal.utcnow()
    ari = None
    if p["ari"]:
        ari = {"cert_id": p["ari"].get("cert_id"), "explanation_url": p["ari"].get("explanation_url"),
               "window_start": _time(p["ari"].get("window_start"), "ari.window_start"),
               "window_end": _time(p["ari"].get("window_end"), "ari.window_end")}
        if bool(ari["window_start"]) != bool(ari["window_end"]):
            raise InputError("ari", "window_start and window_end go together")
    if p["backoff"] and p["backoff"].get("next_attempt"):
        _time(p["backoff"]["next_attempt"], "backoff.next_attempt")
    result = _renewal.decide(
        group=p["group"], names=names, now=now, current=_current(p["current"]), force=p["force"],
        backoff=p["backoff"], ignore_backoff=p["ignore_backoff"], ari=ari, use_ari=p["use_ari"],
        key_type=p["key_type"], renew_fraction=p["renew_fraction"], short_lived_fraction=p["short_lived_fraction"],
        short_lived_days=p["short_lived_days"], stagger_fraction=p["stagger_fraction"])
    if ari and ari.get("explanation_url") and result["trigger"] == "ari":
        result["msg"] += f" (ARI explanation: {ari['explanation_url']})"
    result["changed"] = False
    result["now"] = _renewal.iso(now)
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "group": {"type": "str", "required": True},
            "names": {"type": "list", "elements": "str", "required": True},
            "current": {"type": "dict"},
            "key_type": {"type": "str"},
            "force": {"type": "bool", "default": False},
            "backoff": {"type": "dict"},
            "ignore_backoff": {"type": "bool", "default": False},
            "use_ari": {"type": "bool", "default": True},
            "ari": {"type": "dict", "options": {
                "window_start": {"type": "str"},
                "window_end": {"type": "str"},
                "cert_id": {"type": "str"},
                "explanation_url": {"type": "str"},
            }},
            "renew_fraction": {"type": "float", "default": 0.3333},
            "short_lived_fraction": {"type": "float", "default": 0.5},
            "short_lived_days": {"type": "float", "default": 10},
            "stagger_fraction": {"type": "float", "default": 0.1},
            "now": {"type": "str"},
        },
        supports_check_mode=True,
    )
    run_module(module, work)


if __name__ == "__main__":
    main()
