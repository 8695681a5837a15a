# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Filesystem backend: ``<path>/<group>/state.json`` (0600) in directories of mode 0700.

A write goes to a new temporary file in the same directory, is flushed to disk (``fsync``), and then renamed
over ``state.json`` (``os.replace`` is atomic on POSIX); a run killed at any point leaves either the previous
document or the new one, never a partial file. Every writer's temporary file has its own name (process ID and
random suffix) and a writer only ever removes its own; leftovers of crashed writers are removed once they are
older than ``STALE_TMP_SECONDS``. The compare-and-swap on the revision (read, compare, rename) runs under an
exclusive ``flock`` on ``<group>/.write.lock``, held for milliseconds and released by the kernel if the process
dies. The issuing lock (a lease, ``lease.py``) is ``lock.json``, created whole or not at all: written to a private
temporary file, then hard-linked (``link`` fails if it exists).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import time

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError
from ansible_collections.byoc.certificates.plugins.module_utils._store.base import (
    LOCK, STATE, Store, check_group, decode, encode, revision_of, stale,
)

WRITE_LOCK = ".write.lock"
# A temporary file this old belongs to a writer that died (a write takes milliseconds).
STALE_TMP_SECONDS = 3600


def _fsync(fd: int) -> None:
    """Separate so that tests can inject a crash between writing the data and renaming it."""
    os.fsync(fd)


def _not_a_directory(path: str) -> InputError:
    return InputError("path", f"{path} is not a directory (a file is in the way); path must name a directory on the"
                              " controller, which is created if it does not exist")


class FilesystemStore(Store):
    def __init__(self, path: str) -> None:
        if not path or not isinstance(path, str):
            raise InputError("path", "the filesystem store needs a directory path")
        self.root = os.path.abspath(os.path.expanduser(path))
        self.location = self.root
        # issue 10: a path that is a file (or under a file) is the user's mistake, said before anything is done
        probe = self.root
        while probe and not os.path.lexists(probe):
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
        if os.path.lexists(probe) and not os.path.isdir(probe):
            raise _not_a_directory(probe)

    # -- paths ---------------------------------------------------------------------------------------------------
    def _dir(self, group: str, create: bool = False) -> str:
        d = os.path.join(self.root, check_group(group))
        if os.path.lexists(d) and not os.path.isdir(d):
            raise _not_a_directory(d)
        if create:
            try:
                os.makedirs(self.root, mode=0o700, exist_ok=True)
                os.makedirs(d, mode=0o700, exist_ok=True)
                os.chmod(d, 0o700)
            except (NotADirectoryError, FileExistsError):
                raise _not_a_directory(d) from None
            except OSError as exc:
                raise ApiError(f"Could not create the store directory {d}: {exc.strerror}. Check that the path option"
                               " names a writable directory on the controller.", location=d) from None
        return d

    @contextlib.contextmanager
    def _write_lock(self, directory: str):
        path = os.path.join(directory, WRITE_LOCK)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ApiError(f"Could not open {path}: {exc.strerror}", location=path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    @staticmethod
    def _remove_stale_tmp(directory: str, name: str) -> None:
        """Remove only temporary files of writers that died long ago; a live writer's file is never touched."""
        now = time.time()
        for entry in os.listdir(directory):
            if entry.startswith(f".{name}.") and entry.endswith(".tmp"):
                path = os.path.join(directory, entry)
                try:
                    if now - os.lstat(path).st_mtime > STALE_TMP_SECONDS:
                        os.unlink(path)
                except OSError:
                    pass

    def _write_atomic(self, directory: str, name: str, data: bytes) -> None:
        target = os.path.join(directory, name)
        self._remove_stale_tmp(directory, name)
        tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
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
        except NotADirectoryError:
            raise _not_a_directory(os.path.dirname(path)) from None
        except IsADirectoryError:
            raise ApiError(f"{path} is a directory, not a store document. Move it away.", location=path) from None
        except OSError as exc:
            raise ApiError(f"Could not read {path}: {exc.strerror}. Check the file's permissions (it must be readable"
                           " by the user running Ansible).", location=path) from None
        return decode(data, path)

    def write(self, group: str, doc: dict, expected_revision: int) -> None:
        directory = self._dir(group, create=True)
        with self._write_lock(directory):
            current = self.read(group)
            if revision_of(current) != expected_revision:
                raise stale(group, self.where(group), expected_revision, current)
            self._write_atomic(directory, STATE, encode(doc))

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
        # The lock appears with its content or not at all: written to a private temporary file, then hard-linked
        # to lock.json (link fails if it exists). An O_EXCL create that writes afterwards would show other runs an
        # empty lock for a moment, which reads as expired, so two runs could both believe they hold it.
        directory = self._dir(group, create=True)
        path = os.path.join(directory, LOCK)
        tmp = os.path.join(directory, f".{LOCK}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(lock).encode("utf-8"))
            os.link(tmp, path)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                return False
            raise ApiError(f"Could not create the lock {path}: {exc.strerror}", location=path) from None
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return True

    def _replace_lock(self, group: str, old: dict, lock: dict) -> bool:
        directory = self._dir(group, create=True)
        with self._write_lock(directory):  # compare and replace as one step
            if self.read_lock(group) != old:
                return False
            self._write_atomic(directory, LOCK, json.dumps(lock).encode("utf-8"))
        return True

    def _release_lock(self, group: str, old: dict, record: dict) -> bool:
        directory = self._dir(group)
        with self._write_lock(directory):  # compare and remove as one step (lease.release)
            if self.read_lock(group) != old:
                return False
            try:
                os.unlink(os.path.join(directory, LOCK))
            except FileNotFoundError:
                return False
        return True

    def _delete_lock(self, group: str) -> None:
        try:
            os.unlink(os.path.join(self._dir(group), LOCK))
        except FileNotFoundError:
            pass
