# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Filesystem backend: ``<path>/<group>/state.json`` (0600) in directories of mode 0700.

A write goes to a new temporary file in the same directory, is flushed to disk (``fsync``), and then renamed
over ``state.json`` (``os.replace`` is atomic on POSIX); a run killed at any point leaves either the previous
document or the new one, never a partial file. Leftover temporary files are ignored and removed by the next
write. The lock is ``lock.json`` created with ``O_CREAT|O_EXCL``.
"""

from __future__ import annotations

import errno
import json
import os
import secrets

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError
from ansible_collections.byoc.certificates.plugins.module_utils._store.base import (
    LOCK, STATE, Store, check_group, decode, encode,
)


def _fsync(fd: int) -> None:
    """Separate so that tests can inject a crash between writing the data and renaming it."""
    os.fsync(fd)


class FilesystemStore(Store):
    def __init__(self, path: str) -> None:
        if not path or not isinstance(path, str):
            raise InputError("path", "the filesystem store needs a directory path")
        self.root = os.path.abspath(os.path.expanduser(path))
        self.location = self.root

    # -- paths ---------------------------------------------------------------------------------------------------
    def _dir(self, group: str, create: bool = False) -> str:
        d = os.path.join(self.root, check_group(group))
        if create:
            try:
                os.makedirs(self.root, mode=0o700, exist_ok=True)
                os.makedirs(d, mode=0o700, exist_ok=True)
                os.chmod(d, 0o700)
            except OSError as exc:
                raise ApiError(f"Could not create the store directory {d}: {exc.strerror}. Check that the path option"
                               " names a writable directory on the controller.", location=d) from None
        return d

    def _write_atomic(self, directory: str, name: str, data: bytes) -> None:
        target = os.path.join(directory, name)
        for stale in os.listdir(directory):
            if stale.startswith(f".{name}.") and stale.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(directory, stale))
                except OSError:
                    pass
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                _fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise ApiError(f"Could not write {target}: {exc.strerror or exc}. The previous document is unchanged.",
                           location=target) from None

    # -- documents -----------------------------------------------------------------------------------------------
    def read(self, group: str) -> dict | None:
        path = os.path.join(self._dir(group), STATE)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ApiError(f"Could not read {path}: {exc.strerror}. Check the file's permissions (it must be readable"
                           " by the user running Ansible).", location=path) from None
        return decode(data, path)

    def write(self, group: str, doc: dict) -> None:
        self._write_atomic(self._dir(group, create=True), STATE, encode(doc))

    # -- lock ----------------------------------------------------------------------------------------------------
    def read_lock(self, group: str) -> dict | None:
        path = os.path.join(self._dir(group), LOCK)
        try:
            with open(path, "rb") as fh:
                return json.loads(fh.read().decode("utf-8") or "{}")
        except FileNotFoundError:
            return None
        except ValueError:
            return {"owner": None, "expires": ""}  # unreadable: treated as expired by the caller

    def _create_lock(self, group: str, lock: dict) -> bool:
        path = os.path.join(self._dir(group, create=True), LOCK)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                return False
            raise ApiError(f"Could not create the lock {path}: {exc.strerror}", location=path) from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(lock).encode("utf-8"))
        return True

    def _replace_lock(self, group: str, old: dict, lock: dict) -> bool:
        if self.read_lock(group) != old:
            return False
        self._write_atomic(self._dir(group, create=True), LOCK, json.dumps(lock).encode("utf-8"))
        return True

    def _delete_lock(self, group: str) -> None:
        try:
            os.unlink(os.path.join(self._dir(group), LOCK))
        except FileNotFoundError:
            pass
