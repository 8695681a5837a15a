# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The store interface shared by the filesystem and s3 backends.

Each group has two objects: ``<group>/state.json`` (the whole document; replaced atomically, so a reader sees
either the old or the new document, never a mix) and ``<group>/lock.json`` (created only if absent; it names
the owner and an expiry, so a crashed run's lock can be taken over once it has expired).

Every write is a compare-and-swap on the document's ``revision``: the writer says which revision it read
(0 for a group that did not exist), and the backend replaces the document only if that is still the stored
revision; otherwise it raises ``StaleRevision`` and writes nothing (issue 10: no lost update).
"""

from __future__ import annotations

import abc
import datetime
import json
import re
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError

GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FORMAT = "byoc.certificates/store/1"
STATE = "state.json"
LOCK = "lock.json"


class LockHeld(ApiError):
    """Another run holds the group's lock."""


class StaleRevision(ApiError):
    """The document changed since the writer read it; nothing was written."""


def stale(group: str, where: str, expected: int, found: dict | None) -> StaleRevision:
    found_rev = int((found or {}).get("revision") or 0)
    return StaleRevision(
        f"Group {group}: the store document {where} changed while this task ran (it read revision {expected}, the"
        f" store now holds revision {found_rev}, updated {(found or {}).get('updated') or 'unknown'}). Nothing was"
        " written, so the other writer's change is kept. Run the task again: it reads the new revision and applies"
        " its change on top of it.", location=where, expected_revision=expected, found_revision=found_rev)


def revision_of(doc: dict | None) -> int:
    return int((doc or {}).get("revision") or 0)


def check_group(group: t.Any) -> str:
    if not isinstance(group, str) or not GROUP_RE.match(group) or ".." in group:
        raise InputError("group", f"{group!r} is not a valid group name: use 1-128 letters, digits, '.', '_' or '-',"
                                  " starting with a letter or digit")
    return group


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def lock_expired(lock: dict, now: datetime.datetime) -> bool:
    try:
        expires = datetime.datetime.fromisoformat(str(lock.get("expires", "")).replace("Z", "+00:00"))
    except ValueError:
        return True
    return now >= expires


def new_lock(owner: str, ttl: int, now: datetime.datetime) -> dict:
    import os
    import socket

    return {
        "owner": owner,
        "acquired": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "expires": (now + datetime.timedelta(seconds=ttl)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def decode(data: bytes, where: str) -> dict:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(f"The store document {where} is not valid JSON ({exc}). Restore it from a backup or move it"
                       " away to start the group afresh.", location=where) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ApiError(f"{where} is not a byoc.certificates store document (format {doc.get('format')!r} if any);"
                       f" expected {FORMAT}.", location=where)
    return doc


def encode(doc: dict) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


class Store(abc.ABC):
    """A place that keeps one document per group."""

    #: a human-readable description of where the data lives (for messages and results)
    location: str = ""

    @abc.abstractmethod
    def read(self, group: str) -> dict | None:
        """The group's document, or None when the group has never been written."""

    @abc.abstractmethod
    def write(self, group: str, doc: dict, expected_revision: int) -> None:
        """Replace the group's document atomically, only if its stored revision is still ``expected_revision``
        (0: the group has no document yet). Raises StaleRevision, writing nothing, otherwise."""

    @abc.abstractmethod
    def read_lock(self, group: str) -> dict | None:
        """The lock object, or None."""

    @abc.abstractmethod
    def _create_lock(self, group: str, lock: dict) -> bool:
        """Create the lock object only if none exists; False if one exists."""

    @abc.abstractmethod
    def _replace_lock(self, group: str, old: dict, lock: dict) -> bool:
        """Replace the lock ``old`` (expired, or ours) by ``lock``; False if someone else changed it first."""

    @abc.abstractmethod
    def _delete_lock(self, group: str) -> None:
        """Remove the lock object."""

    def _release_lock(self, group: str, old: dict, record: dict) -> bool:
        """Give back the lease ``old`` only if it is still the stored one (a compare-and-swap, so a lease that
        expired and was taken by another run in the meantime is never removed): by default it is replaced by the
        released ``record`` (an expired lock, free to take). False if someone else changed it first."""
        return self._replace_lock(group, old, record)

    def where(self, group: str) -> str:
        return f"{self.location}/{group}/{STATE}"

    def acquire(self, group: str, owner: str, ttl: int, now: datetime.datetime | None = None) -> tuple[dict, bool]:
        """Take the group's lock for ``owner``. Returns (lock, changed). Re-acquiring our own lock refreshes it.
        Raises LockHeld naming the holder when someone else holds a lock that has not expired."""
        now = now or now_utc()
        lock = new_lock(owner, ttl, now)
        for _attempt in range(3):
            if self._create_lock(group, lock):
                return lock, True
            held = self.read_lock(group)
            if held is None:
                continue
            if held.get("owner") == owner or lock_expired(held, now):
                if self._replace_lock(group, held, lock):
                    return lock, True
                continue
            raise LockHeld(
                f"Group {group} is locked by another run (owner {held.get('owner')}, host {held.get('host')}, pid"
                f" {held.get('pid')}, since {held.get('acquired')}, until {held.get('expires')}) in {self.location}."
                " That run is issuing this group now; try again after it finishes. If it crashed, the lock expires"
                " by itself at the time shown.", lock=held)
        raise LockHeld(f"Group {group}: the lock in {self.location} kept changing while it was being taken; retry.")

    def release(self, group: str, owner: str) -> bool:
        held = self.read_lock(group)
        if held is None:
            return False
        if held.get("owner") != owner:
            raise LockHeld(f"Group {group}: the lock in {self.location} belongs to {held.get('owner')}, not to"
                           f" {owner}; it was not released.", lock=held)
        self._delete_lock(group)
        return True
