# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The contract every DNS provider adapter fulfils, and the registry that picks one by name.

The neutral core (``record.py``) only ever talks to a ``DNSProvider``. An adapter knows its API's shape (RRset or
per-record), its TXT encoding and its errors; it never decides what to change. All names passed in and out are
normalised: lower case, no trailing dot. Values are decoded TXT strings (what the ACME server compares).
"""

from __future__ import annotations

import abc
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, NotFound
from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import is_subdomain

# provider name -> adapter class. Adapters add themselves with @register; record.py imports every adapter module
# statically (Ansible packs only module_utils that are imported by name), and each adapter guards its own
# third-party import, so a missing boto3 or dnspython only matters for the provider that needs it.
REGISTRY: dict[str, type] = {}


def register(name: str):
    def deco(cls):
        cls.name = name
        REGISTRY[name] = cls
        return cls
    return deco


class DNSProvider(abc.ABC):
    """One DNS provider, configured from the module's provider sub-options."""

    name = "provider"

    def __init__(self, options: dict[str, t.Any]) -> None:
        self.options = options or {}

    def validate(self) -> None:
        """Check the provider options before anything is contacted; raise InputError naming the field."""

    @abc.abstractmethod
    def find_zone(self, record: str, zone: str | None) -> str:
        """The zone that holds ``record``: ``zone`` checked when given, else detected. Raises NotFound."""

    @abc.abstractmethod
    def get_txt(self, zone: str, record: str) -> list[str]:
        """The TXT values currently at ``record`` (decoded, in server order, duplicates kept)."""

    @abc.abstractmethod
    def change(self, zone: str, record: str, *, before: list[str], after: list[str], added: list[str],
               removed: list[str], ttl: int) -> None:
        """Make ``record`` hold ``after``. ``added``/``removed`` are the differences from ``before``; RRset
        providers write ``after`` (or delete when it is empty), per-record providers apply the differences."""

    def wait_for_sync(self, timeout: float) -> bool | None:
        """Wait until the provider reports the last change as applied on its own servers (Route 53 INSYNC).
        ``None`` when the provider has no such notion."""
        return None

    def describe(self) -> str:
        """Where the provider talks to, for messages (never a secret)."""
        return self.name


def create_provider(name: str, options: dict[str, t.Any]) -> DNSProvider:
    if name not in REGISTRY:
        raise InputError("provider", f"unknown provider {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](options)


def longest_suffix_zone(record: str, zones: t.Iterable[str], where: str) -> str:
    """Pick the zone with the longest name that ``record`` falls under; NotFound naming what was tried."""
    names = sorted({z.rstrip(".").lower() for z in zones})
    matches = [z for z in names if is_subdomain(record, z)]
    if not matches:
        shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") if names else "none"
        raise NotFound(
            f"No zone for {record} at {where}: the zones visible with these credentials are: {shown}."
            " Check the record name, set the zone option, or grant the credentials access to the zone.",
            record=record, zones_seen=names[:50])
    return max(matches, key=len)


def clean_secret(value: t.Any, field: str, what: str = "the value") -> str | None:
    """A credential as it goes into a request header: surrounding whitespace stripped (a trailing newline from a
    vault block scalar or an environment variable is common), anything else that a header cannot carry refused.
    The value itself is never part of the message. ``None`` and ``""`` give ``None`` (the caller decides whether
    the credential is required)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(field, f"must be a string ({what} is not shown)")
    text = value.strip()
    if not text:
        return None
    bad = [c for c in text if not 0x21 <= ord(c) <= 0x7E]
    if bad:
        kind = "whitespace or control characters" if all(ord(c) < 0x80 for c in bad) else "non-ASCII characters"
        raise InputError(field, f"contains {kind} inside {what} (it is not shown here). A credential is one"
                         " printable ASCII word: copy it again without line breaks or spaces.")
    return text
