# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Leases in the certificate store: coordination between runs that share one store (AWX job slices, issue 12).

A lease is named like a store group and is that group's lock object (``<group>/lock.json``), so a group's lease
and the lock that ``certificate_store`` writes honour are one and the same thing: while one run holds the lease of
a group, no other run orders for it or writes its document. An org's trust lease is the lease of the org's ledger
group (``genesys-trust-<hash>``), where ``genesys_edge_certificate`` records the CAs it created.

Every change is a compare-and-swap of the backend (no new locking library):

- acquire: create the object only if absent (filesystem ``O_CREAT|O_EXCL``, S3 ``If-None-Match: *``); an expired
  (or released) lease, or our own, is replaced only if it is still the object read (filesystem: compare and rename
  under the group's ``flock``; S3 ``If-Match`` on its ETag);
- renew: the same conditional replace, only while the lease is still ours;
- release: our lease is replaced by a released record (or removed), again only if it is still the one read.

A lease that is not renewed expires at ``expires`` (the holder's clock when it was taken, plus ``ttl``), so a run
killed while it holds one blocks the others for at most ``ttl`` seconds. Expiry is judged with the waiter's
clock: keep the clocks of the execution nodes in sync (NTP) and the TTL well above their skew.
"""

from __future__ import annotations

import datetime
import os
import socket
import time
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError, WaitTimeout
from ansible_collections.byoc.certificates.plugins.module_utils._store.base import (
    LockHeld, Store, check_group, lock_expired, new_lock, now_utc,
)

MIN_TTL = 5
PROGRESS_EVERY = 30.0  # seconds between two progress lines while the same holder keeps the lease
MAX_TTL = 7 * 24 * 3600


class LeaseLost(ApiError):
    """The lease is no longer ours (it expired and another run took it, or it was removed)."""


def iso(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def default_holder(environ: t.Mapping[str, str] | None = None, pid: int | None = None) -> str:
    """Who holds a lease when the task does not say: the AWX job (``JOB_ID``, one per slice), the controller's
    host name and the process ID of the ``ansible-playbook`` that runs the task (the action plugin runs in a
    worker forked from it, so every task of one run gets the same holder)."""
    env = os.environ if environ is None else environ
    job = env.get("JOB_ID") or env.get("AWX_JOB_ID") or "run"
    return f"{job}@{socket.gethostname()}:{pid if pid is not None else os.getppid()}"


def public(lease: dict | None) -> dict | None:
    """A lease as returned to the user (no backend fields such as the S3 ETag)."""
    if not lease:
        return None
    return {k: lease.get(k) for k in ("holder", "acquired", "renewed", "expires", "host", "pid", "released")
            if k in lease or k == "holder"}


def _with_holder(lock: dict) -> dict:
    lock = dict(lock)
    lock["holder"] = lock.get("owner")
    return lock


def check_ttl(ttl: t.Any) -> int:
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not MIN_TTL <= ttl <= MAX_TTL:
        raise InputError("ttl", f"must be a whole number of seconds from {MIN_TTL} to {MAX_TTL}, got {ttl!r}")
    return ttl


def check_holder(holder: t.Any) -> str:
    if not isinstance(holder, str) or not holder.strip() or len(holder) > 200:
        raise InputError("holder", "must be a non-empty string of at most 200 characters (for example the AWX job ID)")
    return holder.strip()


def read(store: Store, name: str) -> dict | None:
    """The lease object as stored (with ``holder``), or None."""
    lock = store.read_lock(check_group(name))
    return None if lock is None else _with_holder(lock)


def is_live(lease: dict | None, now: datetime.datetime) -> bool:
    return bool(lease) and bool(lease.get("owner")) and not lock_expired(lease, now)


def held_message(store: Store, name: str, lease: dict) -> str:
    return (f"The lease {name} in {store.location} is held by {lease.get('owner')} (host {lease.get('host')}, pid"
            f" {lease.get('pid')}, since {lease.get('acquired')}) until {lease.get('expires')}")


def acquire(store: Store, name: str, holder: str, ttl: int, now: datetime.datetime | None = None) -> tuple[dict, bool]:
    """Take the lease for ``holder`` (or refresh it if ``holder`` has it). Returns (lease, changed). Raises
    ``LockHeld`` (with ``lock``: the live lease of someone else) when another holder has it."""
    check_group(name)
    try:
        lock, changed = store.acquire(name, holder, ttl, now=now)
    except LockHeld as exc:
        held = exc.details.get("lock") if hasattr(exc, "details") else None
        if held:
            raise LockHeld(held_message(store, name, held) + ".", lock=held) from None
        raise
    return _with_holder(lock), changed


def renew(store: Store, name: str, holder: str, ttl: int, now: datetime.datetime | None = None) -> dict:
    """Extend our lease by ``ttl`` seconds from ``now``. Raises ``LeaseLost`` if it is not ours any more; an
    expired lease that nobody took yet is still ours and is renewed (nobody else can have acted under it)."""
    now = now or now_utc()
    for _attempt in range(3):
        held = store.read_lock(check_group(name))
        if not held or held.get("owner") != holder:
            raise lost(store, name, holder, held)
        lock = new_lock(holder, ttl, now)
        lock["acquired"] = held.get("acquired") or lock["acquired"]
        lock["renewed"] = iso(now)
        if store._replace_lock(name, held, lock):  # pylint: disable=protected-access
            return _with_holder(lock)
    raise LeaseLost(f"The lease {name} in {store.location} kept changing while it was being renewed; run again.")


def lost(store: Store, name: str, holder: str, held: dict | None) -> LeaseLost:
    who = f"now held by {held.get('owner')} until {held.get('expires')}" if held and held.get("owner") else "gone"
    return LeaseLost(f"The lease {name} in {store.location} is no longer held by {holder} ({who}); it expired or was"
                     " released. Work done under it may have overlapped with another run: run again.",
                     lease=public(_with_holder(held)) if held else None)


def release(store: Store, name: str, holder: str, now: datetime.datetime | None = None) -> tuple[bool, dict | None]:
    """Give the lease back if ``holder`` has it. Returns (released, the lease found). A lease held by someone else
    (ours expired and was taken) is left alone and returned, so the caller can warn."""
    now = now or now_utc()
    for _attempt in range(3):
        held = store.read_lock(check_group(name))
        if not held or not held.get("owner"):
            return False, None
        if held.get("owner") != holder:
            return False, _with_holder(held)
        record = {"owner": None, "released": iso(now), "released_by": holder, "expires": iso(now),
                  "acquired": held.get("acquired")}
        if store._release_lock(name, held, record):  # pylint: disable=protected-access
            return True, _with_holder(held)
    raise LeaseLost(f"The lease {name} in {store.location} kept changing while it was being released; it expires by"
                    " itself at the time it shows.")


def wait_acquire(
    store: Store,
    name: str,
    holder: str,
    ttl: int,
    *,
    timeout: float,
    poll: float = 5.0,
    progress: t.Callable[[str], None] | None = None,
    clock: t.Callable[[], float] = time.monotonic,
    sleep: t.Callable[[float], None] = time.sleep,
    now: t.Callable[[], datetime.datetime] = now_utc,
) -> dict:
    """Take the lease, waiting up to ``timeout`` seconds while another holder has it. Returns
    ``{lease, changed, waited, waited_for, progress}``; ``waited_for`` lists the holders seen (in order) with their
    expiry. While it waits, ``progress`` gets one line (what is waited for, for how long, who holds it and until when)
    when the wait starts, when another holder has the lease, and every ``PROGRESS_EVERY`` seconds. Raises
    ``WaitTimeout`` naming the holder when the time is up."""
    start = clock()
    seen: list[dict] = []
    lines: list[str] = []
    shown = 0.0
    while True:
        try:
            lease, changed = acquire(store, name, holder, ttl, now=now())
        except LockHeld as exc:
            held = exc.details.get("lock") or {}
            entry = {"holder": held.get("owner"), "expires": held.get("expires"), "acquired": held.get("acquired")}
            new_holder = not seen or seen[-1]["holder"] != entry["holder"]
            if new_holder:
                seen.append(entry)
            else:
                seen[-1]["expires"] = entry["expires"]  # the holder renewed it
            elapsed = clock() - start
            if elapsed >= timeout:
                raise WaitTimeout(
                    f"{held_message(store, name, held)}; waited {elapsed:.0f}s of at most {timeout:g}s. The holder"
                    " is another run (an AWX job slice, or a run by hand) doing this work now; run again after it"
                    " has finished. If that run was killed, the lease expires by itself at the time shown.",
                    lease=public(_with_holder(held)), waited=round(elapsed, 1), waited_for=seen) from None
            line = (f"waiting for the lease {name} ({elapsed:.0f}s of at most {timeout:g}s): held by"
                    f" {held.get('owner')} since {held.get('acquired')}, until {held.get('expires')}")
            # a line when the wait starts, when another holder has the lease, then every PROGRESS_EVERY seconds
            if new_holder or elapsed - shown >= PROGRESS_EVERY:
                shown = elapsed
                lines.append(line)
                if progress:
                    progress(line)
            # wake up at the next poll, or when the lease expires if that comes first (plus a second of margin)
            pause = poll
            expires = _parse(held.get("expires"))
            if expires is not None:
                until_expiry = (expires - now()).total_seconds() + 1.0
                pause = min(pause, max(until_expiry, 0.2))
            sleep(max(0.0, min(pause, timeout - elapsed)))
            continue
        return {"lease": lease, "changed": changed, "waited": round(clock() - start, 1), "waited_for": seen,
                "progress": lines}


def _parse(text: t.Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None


# ========================================================================================= the task (module/action) ==
STATES = ["acquired", "renewed", "released", "read"]


def argument_spec() -> dict[str, t.Any]:
    from ansible_collections.byoc.certificates.plugins.module_utils._store.document import store_argspec

    spec = store_argspec()
    spec.update(
        state={"type": "str", "default": "acquired", "choices": STATES},
        holder={"type": "str"},
        ttl={"type": "int", "default": 900},
        wait={"type": "float", "default": 0},
        poll={"type": "float", "default": 5},
    )
    return spec


def _stored_current(store: Store, name: str) -> tuple[dict | None, int]:
    """The group's current material (fingerprint, not_after) and the document's revision, read after the lease
    was taken: what another holder stored before giving the lease back."""
    doc = store.read(name)
    if not doc:
        return None, 0
    cur = doc.get("current") or None
    rev = int(doc.get("revision") or 0)
    if not isinstance(cur, dict):
        return None, rev
    return {"fingerprint": cur.get("fingerprint"), "not_after": cur.get("not_after")}, rev


def run_task(params: dict, *, check_mode: bool, progress: t.Callable[[str], None] | None = None,
             holder_pid: int | None = None) -> dict:
    """The whole task: validate, open the store, then acquire (waiting up to ``wait`` seconds), renew, release or
    read the lease named ``group``. ``holder`` defaults to :func:`default_holder`."""
    from ansible_collections.byoc.certificates.plugins.module_utils._store.document import open_store

    name = check_group(params.get("group"))
    state = params.get("state") or "acquired"
    holder = check_holder(params.get("holder") or default_holder(pid=holder_pid))
    ttl = check_ttl(params.get("ttl") if params.get("ttl") is not None else 900)
    wait = float(params.get("wait") or 0)
    poll = float(params.get("poll") if params.get("poll") is not None else 5)
    if wait < 0 or wait > MAX_TTL:
        raise InputError("wait", f"must be from 0 to {MAX_TTL} seconds, got {wait:g}")
    if not 0.1 <= poll <= 300:
        raise InputError("poll", f"must be from 0.1 to 300 seconds, got {poll:g}")
    store = open_store(params)
    now = now_utc()
    found = read(store, name)
    live = is_live(found, now)
    ours = live and found.get("owner") == holder
    result: dict[str, t.Any] = {"changed": False, "group": name, "holder": holder, "state": state,
                                "location": store.location, "waited": 0.0, "waited_for": [], "progress": []}

    if state == "read":
        result.update(lease=public(found) if live else None, held=live, held_by_us=ours)
    elif state == "acquired":
        if check_mode:
            result.update(changed=not ours, lease=public(found) if live else None, held=live, held_by_us=ours,
                          would_wait=live and not ours)
        else:
            got = wait_acquire(store, name, holder, ttl, timeout=wait, poll=poll, progress=progress)
            result.update(changed=got["changed"], lease=public(got["lease"]), held=True, held_by_us=True,
                          waited=got["waited"], waited_for=got["waited_for"], progress=got["progress"])
    elif state == "renewed":
        if check_mode:
            if not (found and found.get("owner") == holder):
                raise lost(store, name, holder, found)
            result.update(changed=True, lease=public(found), held=True, held_by_us=True)
        else:
            result.update(changed=True, lease=public(renew(store, name, holder, ttl, now=now)), held=True,
                          held_by_us=True)
    else:  # released
        if check_mode:
            mine = bool(found) and found.get("owner") == holder
            result.update(changed=mine, lease=None if mine else (public(found) if live else None),
                          held=live and not mine, held_by_us=False)
        else:
            released, other = release(store, name, holder, now=now)
            still = other if other and other.get("owner") != holder else None
            result.update(changed=released, lease=public(still), held=bool(still) and is_live(still, now),
                          held_by_us=False)
            if still:
                result["warning"] = (f"The lease {name} was not released: it is held by {still.get('owner')} until"
                                     f" {still.get('expires')} (ours had expired and was taken over).")
    if state in ("acquired", "read"):
        result["current"], result["revision"] = _stored_current(store, name)
    lease = result.get("lease")
    if state == "acquired":
        result["msg"] = (f"{'Would take' if check_mode else 'Holds'} the lease {name} as {holder}"
                         + (f" until {lease.get('expires')}" if lease and not check_mode else "")
                         + (f" after waiting {result['waited']:g}s" if result["waited"] else "") + ".")
    elif state == "released":
        result["msg"] = f"{'Released' if result['changed'] else 'Did not hold'} the lease {name} ({holder})."
    elif state == "renewed":
        result["msg"] = f"Renewed the lease {name} ({holder})" + (f" until {lease.get('expires')}." if lease else ".")
    else:
        result["msg"] = (f"The lease {name} is held by {lease.get('holder')} until {lease.get('expires')}." if lease
                         else f"The lease {name} is free.")
    return result
