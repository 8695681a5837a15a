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
  - byoc.certificates._attributes.ACTIONGROUP_RENEWAL
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
    description:
      - Lifetimes shorter than this many days use O(short_lived_fraction).
      - A finite number from V(0) to V(36500); V(inf), V(nan) and negative values are refused.
    type: float
    default: 10
  stagger_fraction:
    description: The largest share of the lifetime by which a group's lifetime-based renewal point is moved earlier. V(0) turns the stagger off.
    type: float
    default: 0.1
  now:
    description:
      - The time to decide for, instead of the clock (ISO 8601, or seconds since the epoch). For tests and planning.
      - Anything else is refused naming this option.
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

import math


from ansible_collections.byoc.certificates.plugins.module_utils import _pem, _renewal
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


# The longest lifetime or short-lived threshold that makes sense (and that datetime arithmetic can hold).
MAX_DAYS = 36500


def _time(value, field):
    return _renewal.time_option(value, field)


def _fraction(params, field):
    value = params[field]
    if not math.isfinite(value) or not 0 <= value < 1:
        raise InputError(field, f"must be a number of at least 0 and below 1, got {value}")
    return value


def _names(value, field):
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise InputError(field, f"must be a list of DNS names (strings), got {type(value).__name__}"
                                f"{'' if not isinstance(value, list) else ' with non-string items'}")
    return value


def _current(cur):
    if not cur:
        return None
    out = {"names": None, "key_matches": cur.get("key_matches"), "key_type": cur.get("key_type")}
    if cur.get("names") is not None:
        out["names"] = _names(cur["names"], "current.names")
    if out["key_matches"] is not None and not isinstance(out["key_matches"], bool):
        raise InputError("current.key_matches", f"must be true, false or null, got {str(out['key_matches'])[:40]!r}")
    if out["key_type"] is not None and not isinstance(out["key_type"], str):
        raise InputError("current.key_type", "must be a string such as ecdsa-secp256r1")
    if cur.get("has_privatekey") is False:
        out["key_missing"] = True
    if cur.get("certificate"):
        if not isinstance(cur["certificate"], str):
            raise InputError("current.certificate", "must be a PEM certificate (a string)")
        cert = _pem.load_certificate(cur["certificate"], "current.certificate")
        out["not_before"], out["not_after"] = cert.not_valid_before_utc, cert.not_valid_after_utc
        if out["names"] is None:
            out["names"] = [n.split(":", 1)[1] for n in _pem.subject_alt_names(cert) if n.startswith("DNS:")]
    else:
        out["not_before"] = _time(cur.get("not_before"), "current.not_before")
        out["not_after"] = _time(cur.get("not_after"), "current.not_after")
        if not out["not_before"] or not out["not_after"]:
            raise InputError("current", "needs certificate, or not_before and not_after")
    if out["not_after"] <= out["not_before"]:
        raise InputError("current.not_after", f"{_renewal.iso(out['not_after'])} is not after not_before"
                                              f" {_renewal.iso(out['not_before'])}")
    if out["names"] is None:
        out["names"] = []
    return out


def _backoff(backoff):
    if not backoff:
        return backoff
    if backoff.get("next_attempt"):
        _time(backoff["next_attempt"], "backoff.next_attempt")
    failures = backoff.get("failures")
    if failures is not None and (isinstance(failures, bool) or not isinstance(failures, int)):
        try:
            failures = int(str(failures))
        except ValueError:
            raise InputError("backoff.failures", f"must be a whole number, got {str(failures)[:40]!r}") from None
        backoff = dict(backoff, failures=failures)
    return backoff


def work(module):
    p = module.params
    for field in ("renew_fraction", "short_lived_fraction", "stagger_fraction"):
        _fraction(p, field)
    if not math.isfinite(p["short_lived_days"]) or not 0 <= p["short_lived_days"] <= MAX_DAYS:
        raise InputError("short_lived_days", f"must be a number of days from 0 to {MAX_DAYS}, got {p['short_lived_days']}")
    names = [n for n in _names(p["names"], "names") if n and n.strip()]
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
    current = _current(p["current"])
    backoff = _backoff(p["backoff"])
    result = _renewal.decide(
        group=p["group"], names=names, now=now, current=current, force=p["force"],
        backoff=backoff, ignore_backoff=p["ignore_backoff"], ari=ari, use_ari=p["use_ari"],
        key_type=p["key_type"], renew_fraction=p["renew_fraction"], short_lived_fraction=p["short_lived_fraction"],
        short_lived_days=p["short_lived_days"], stagger_fraction=p["stagger_fraction"])
    if ari and ari.get("explanation_url") and result["trigger"] == "ari":
        result["msg"] += f" (ARI explanation: {ari['explanation_url']})"
    result["changed"] = False
    result["now"] = _renewal.iso(now)
    return result


def main():
    module = ByocModule(
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
