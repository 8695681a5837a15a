"""One SFTP server per SBC Core node, on paramiko's server classes.

sbc-apis.md B2: "Certificates reside in the /opt/sonus/external directory"; files are uploaded by SFTP before they
are installed. The node's directory on the lab's disk stands for /opt/sonus/external: the virtual paths
``/opt/sonus/external/<file>`` map into it and nothing else is reachable (stricter than a real shell account).
A test-only switch (``node.sftp_down``) makes the node refuse SFTP, like an unreachable standby.
"""

from __future__ import annotations

import errno
import os
import posixpath
import socket
import threading
import typing as t
from pathlib import Path

import paramiko

EXTERNAL = "/opt/sonus/external"  # sbc-apis.md B2


class _Handle(paramiko.SFTPHandle):
    def __init__(self, fh, flags: int, path: Path, node) -> None:
        super().__init__(flags)
        self.readfile = fh if not (flags & (os.O_WRONLY)) or (flags & os.O_RDWR) else None
        self.writefile = fh if flags & (os.O_WRONLY | os.O_RDWR) else None
        self._fh = fh
        self._path = path
        self._node = node

    def stat(self):
        return paramiko.SFTPAttributes.from_stat(os.fstat(self._fh.fileno()))

    def chattr(self, attr):
        return paramiko.SFTP_OK

    def close(self):
        super().close()
        if self.writefile is not None:
            self._node.log(f"sftp wrote {self._path.name}")


class _Interface(paramiko.SFTPServerInterface):
    def __init__(self, server, node, *args, **kwargs) -> None:
        super().__init__(server, *args, **kwargs)
        self.node = node

    # Virtual path -> real path, or None when outside /opt/sonus/external.
    def _real(self, path: str) -> Path | None:
        norm = posixpath.normpath(posixpath.join("/", path))
        if norm == EXTERNAL:
            return self.node.root
        if not norm.startswith(EXTERNAL + "/"):
            return None
        rel = norm[len(EXTERNAL) + 1:]
        if "/" in rel:  # flat directory, like the device's
            return None
        return self.node.root / rel

    def canonicalize(self, path):
        return posixpath.normpath(posixpath.join(EXTERNAL if not path.startswith("/") else "/", path))

    def list_folder(self, path):
        real = self._real(path)
        if real != self.node.root:
            return paramiko.SFTP_NO_SUCH_FILE
        out = []
        for entry in sorted(self.node.root.iterdir()):
            attr = paramiko.SFTPAttributes.from_stat(entry.stat())
            attr.filename = entry.name
            out.append(attr)
        return out

    def stat(self, path):
        real = self._real(path)
        if real is None or not real.exists():
            return paramiko.SFTP_NO_SUCH_FILE
        return paramiko.SFTPAttributes.from_stat(real.stat())

    lstat = stat

    def open(self, path, flags, attr):
        real = self._real(path)
        if real is None or real == self.node.root:
            return paramiko.SFTP_PERMISSION_DENIED
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
        if writing and self.node.sftp_readonly:
            return paramiko.SFTP_PERMISSION_DENIED
        try:
            fd = os.open(real, flags, 0o600)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        mode = "r+b" if flags & os.O_RDWR else ("wb" if flags & os.O_WRONLY else "rb")
        if flags & os.O_APPEND:
            mode = "ab"
        return _Handle(os.fdopen(fd, mode), flags, real, self.node)

    def remove(self, path):
        real = self._real(path)
        if real is None or real == self.node.root:
            return paramiko.SFTP_PERMISSION_DENIED
        if self.node.sftp_readonly:
            return paramiko.SFTP_PERMISSION_DENIED
        try:
            real.unlink()
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        return paramiko.SFTP_OK

    def rename(self, oldpath, newpath):
        old, new = self._real(oldpath), self._real(newpath)
        if old is None or new is None or self.node.sftp_readonly:
            return paramiko.SFTP_PERMISSION_DENIED
        try:
            os.replace(old, new)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        return paramiko.SFTP_OK

    posix_rename = rename

    def mkdir(self, path, attr):
        return paramiko.SFTPServer.convert_errno(errno.EACCES)

    def rmdir(self, path):
        return paramiko.SFTPServer.convert_errno(errno.EACCES)

    def chattr(self, path, attr):
        return paramiko.SFTP_OK


class _Auth(paramiko.ServerInterface):
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password

    def get_allowed_auths(self, username):
        return "password"

    def check_auth_password(self, username, password):
        if username == self.username and password == self.password:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class SftpNodeServer:
    """Accepts SSH connections for one node and serves the ``sftp`` subsystem rooted at ``node.root``."""

    def __init__(self, host: str, port: int, node, host_key: paramiko.PKey, username: str, password: str) -> None:
        self.node = node
        self.host_key = host_key
        self.username, self.password = username, password
        self.sock = socket.create_server((host, port))

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name=f"sftp-{self.node.name}").start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _peer = self.sock.accept()
            except OSError:
                return
            if self.node.sftp_down:
                # test-only fault: the node is unreachable for SFTP (connection dropped before the SSH banner)
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _Interface, self.node)
        try:
            transport.start_server(server=_Auth(self.username, self.password))
            while transport.is_active():
                transport.join(1)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            transport.close()


def load_or_create_host_key(path: Path) -> paramiko.PKey:
    if path.exists():
        return paramiko.ECDSAKey.from_private_key_file(str(path))
    key = paramiko.ECDSAKey.generate()
    key.write_private_key_file(str(path))
    return key


def public_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


__all__: t.List[str] = ["SftpNodeServer", "load_or_create_host_key", "public_line", "EXTERNAL"]
