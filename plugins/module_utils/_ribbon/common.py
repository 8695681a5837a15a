# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Pieces shared by the Ribbon Core and Edge code: safe XML parsing, PKCS#12 building, SFTP to a node."""

from __future__ import annotations

import base64
import hashlib
import io
import posixpath
import re
import typing as t
import xml.etree.ElementTree as ET

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ConnectionFailure,
    InputError,
    MissingDependency,
)

try:
    import paramiko

    HAS_PARAMIKO = True
    PARAMIKO_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised by the sanity import test
    HAS_PARAMIKO = False
    PARAMIKO_IMPORT_ERROR = str(_exc)

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False

_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)


def parse_xml(body: bytes, where: str) -> ET.Element:
    """Parse XML from a device, which we do not trust: any DTD (and so any entity expansion) is refused."""
    if not body or not body.strip():
        raise ApiError(f"{where} answered with an empty body where XML was expected.", url=where)
    if _DTD_RE.search(body):
        raise ApiError(f"{where} answered with XML containing a DTD or entity declaration; refusing to parse it.",
                       url=where)
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise ApiError(f"{where} answered with XML that cannot be parsed ({exc}): {body[:200]!r}", url=where) from None


def local(tag: str) -> str:
    """Element name without its namespace."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def leaves(elem: ET.Element) -> dict[str, str]:
    """The simple child elements of ``elem`` as a dict (namespace-free names)."""
    return {local(c.tag): (c.text or "").strip() for c in elem if len(c) == 0}


def find_all(elem: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in elem.iter() if local(e.tag) == name]


def build_pkcs12(name: str, key, cert, extra: list, passphrase: str) -> bytes:
    """A PKCS#12 holding the key, the certificate and the chain, encrypted with ``passphrase``."""
    return pkcs12.serialize_key_and_certificates(
        name.encode(), key, cert, extra or None, serialization.BestAvailableEncryption(passphrase.encode()))


def pkcs12_certificate(data: bytes, passphrase: str | None):
    """The certificate inside a PKCS#12, or None when it cannot be opened with ``passphrase``."""
    try:
        _key, cert, _extra = pkcs12.load_key_and_certificates(data, passphrase.encode() if passphrase else None)
    except (ValueError, TypeError):
        return None
    return cert


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SftpNode:
    """An SFTP session to one SBC Core node (sbc-apis.md B2: files live in /opt/sonus/external).

    Host keys are verified: against ``host_key`` ("<type> <base64>") when given, else against the known_hosts
    file(s); an unknown key is refused unless ``host_key_checking`` is false.
    """

    def __init__(self, node: dict, *, username: str, password: str | None, directory: str, key_filename: str | None,
                 known_hosts: str | None, host_key_checking: bool, timeout: float) -> None:
        if not HAS_PARAMIKO:
            raise MissingDependency("paramiko", "to upload certificate files to SBC Core nodes over SFTP",
                                    PARAMIKO_IMPORT_ERROR)
        self.name = node.get("name") or node["host"]
        self.host, self.port = node["host"], int(node.get("port") or 22)
        self.where = f"SFTP on node {self.name} ({self.host}:{self.port})"
        self.directory = directory.rstrip("/") or "/"
        self.ssh = paramiko.SSHClient()
        entry = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        if node.get("host_key"):
            try:
                ktype, b64 = node["host_key"].split()[:2]
                self.ssh.get_host_keys().add(entry, ktype, paramiko.PKey.from_type_string(ktype, base64.b64decode(b64)))
            except (ValueError, paramiko.SSHException, TypeError) as exc:
                raise InputError("nodes", f"host_key of node {self.name} is not '<type> <base64>': {exc}") from None
            self.ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            try:
                self.ssh.load_system_host_keys(known_hosts) if known_hosts else self.ssh.load_system_host_keys()
            except OSError as exc:
                raise InputError("sftp_known_hosts", f"cannot read {known_hosts}: {exc}") from None
            self.ssh.set_missing_host_key_policy(
                paramiko.RejectPolicy() if host_key_checking else paramiko.AutoAddPolicy())
        try:
            self.ssh.connect(self.host, port=self.port, username=username, password=password,
                             key_filename=key_filename, timeout=timeout, banner_timeout=timeout,
                             auth_timeout=timeout, look_for_keys=False, allow_agent=False)
            self.sftp = self.ssh.open_sftp()
        except paramiko.AuthenticationException as exc:
            self.close()
            raise AuthenticationFailure(
                f"{self.where} rejected the credentials ({exc}). Check sftp_username and sftp_password/"
                "sftp_private_key for this node.", node=self.name) from None
        except paramiko.BadHostKeyException as exc:
            self.close()
            raise ConnectionFailure(f"{self.where} presented a host key that does not match the expected one ({exc})."
                                    " Check the node's host_key or known_hosts.", node=self.name) from None
        except paramiko.SSHException as exc:
            self.close()
            raise ConnectionFailure(
                f"{self.where} failed: {exc or type(exc).__name__}. If the host key is unknown, give the node's"
                " host_key or add it to known_hosts; otherwise check that the node is up and reachable.",
                node=self.name) from None
        except (OSError, EOFError) as exc:
            self.close()
            raise ConnectionFailure(f"Cannot reach {self.where}: {exc or type(exc).__name__}. Check that the node is"
                                    " up and SFTP is reachable from the controller.", node=self.name) from None

    def path(self, filename: str) -> str:
        return posixpath.join(self.directory, filename)

    def listdir(self) -> list[str]:
        try:
            return self.sftp.listdir(self.directory)
        except (OSError, paramiko.SSHException) as exc:
            raise ConnectionFailure(f"{self.where}: cannot list {self.directory}: {exc}", node=self.name) from None

    def get(self, filename: str) -> bytes | None:
        buf = io.BytesIO()
        try:
            self.sftp.getfo(self.path(filename), buf)
        except FileNotFoundError:
            return None
        except (OSError, paramiko.SSHException) as exc:
            raise ConnectionFailure(f"{self.where}: cannot read {self.path(filename)}: {exc}", node=self.name) from None
        return buf.getvalue()

    def put(self, filename: str, data: bytes) -> None:
        """Write through a temporary name, rename into place, then read back and compare."""
        tmp = self.path(f".{filename}.upload")
        try:
            self.sftp.putfo(io.BytesIO(data), tmp, file_size=len(data), confirm=True)
            try:
                self.sftp.posix_rename(tmp, self.path(filename))
            except (OSError, paramiko.SSHException):
                self.sftp.rename(tmp, self.path(filename))
        except (OSError, paramiko.SSHException) as exc:
            self.remove(f".{filename}.upload")  # never leave a partial copy (it may hold a key) behind
            raise ConnectionFailure(
                f"{self.where}: upload of {self.path(filename)} failed: {exc or type(exc).__name__}. Check free space"
                " and the account's write permission on the directory.", node=self.name) from None
        back = self.get(filename)
        if back is None or sha256_hex(back) != sha256_hex(data):
            gone = self.remove(filename)
            raise ApiError(f"{self.where}: {self.path(filename)} reads back different from what was uploaded"
                           + ("; it was removed again." if gone else f"; it could NOT be removed and is left on node"
                              f" {self.name}: remove it by hand."), node=self.name)

    def remove(self, filename: str) -> bool:
        try:
            self.sftp.remove(self.path(filename))
            return True
        except (OSError, paramiko.SSHException):
            return False

    def close(self) -> None:
        try:
            self.ssh.close()
        except Exception:  # pylint: disable=broad-exception-caught
            pass


__all__: t.List[str] = ["parse_xml", "local", "leaves", "find_all", "build_pkcs12", "pkcs12_certificate",
                        "SftpNode", "sha256_hex", "check_device_name", "scrub_secrets"]

# sbc-apis.md B2 says only that the EMA file upload has "file-name restrictions" and gives no rule for PKI object
# names (open question 3: UNCONFIRMED). The stricter reading, checked before the first write: ASCII letters and
# digits, with '_', '-' and '.' inside (never first or last, never '..'), no path separator, at most 63 characters.
_DEVICE_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$")
DEVICE_NAME_MAX = 63


def check_device_name(field: str, name: t.Any, what: str, *, max_len: int = DEVICE_NAME_MAX) -> str:
    """Refuse (InputError naming ``field``) a name the SBC's REST API or SFTP directory would not take."""
    if not isinstance(name, str) or not name:
        raise InputError(field, f"{what} is empty")
    shown = name.encode("ascii", "backslashreplace").decode("ascii")[:80]
    problems = []
    if not name.isascii():
        problems.append("non-ASCII characters")
    if "/" in name or "\\" in name:
        problems.append("a path separator")
    if ".." in name:
        problems.append("'..'")
    if len(name) > max_len:
        problems.append(f"{len(name)} characters (at most {max_len})")
    if not problems and not _DEVICE_NAME_RE.match(name):
        problems.append("characters other than ASCII letters, digits, '_', '-' and '.' inside the name")
    if problems:
        raise InputError(field, f"{what} '{shown}' has {', '.join(problems)}; the SBC accepts ASCII letters, digits and"
                                f" '_', '-', '.' inside the name, up to {max_len} characters. Nothing was uploaded or"
                                " changed")
    return name


def scrub_secrets(exc: Exception, secrets: t.Iterable[t.Any]) -> Exception:
    """Replace every secret of the task found in a ByocError's message or string details with '********'.

    A device may echo a request value in its error text; a secret must never reach a message either way."""
    values = sorted({s for s in secrets if isinstance(s, str) and len(s) >= 3}, key=len, reverse=True)
    if not values or not hasattr(exc, "msg"):
        return exc

    def clean(text):
        if not isinstance(text, str):
            return text
        for v in values:
            text = text.replace(v, "********")
        return text

    exc.msg = clean(exc.msg)
    exc.args = (exc.msg,)
    exc.details = {k: clean(v) for k, v in getattr(exc, "details", {}).items()}
    return exc


def connection_argument_spec() -> dict:
    """The options of the ``byoc.certificates._ribbon`` doc fragment."""
    from ansible.module_utils.basic import env_fallback

    return dict(
        platform=dict(type="str", required=True, choices=["core", "edge"]),
        api_url=dict(type="str", required=True, fallback=(env_fallback, ["RIBBON_API_URL"])),
        # Not required here: when not given, _ribbon/credentials.py reads the platform's environment variables.
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="int", default=30),
        nodes=dict(type="list", elements="dict", options=dict(
            name=dict(type="str"),
            host=dict(type="str", required=True),
            port=dict(type="int", default=22),
            host_key=dict(type="str", no_log=False),
        )),
        sftp_username=dict(type="str", fallback=(env_fallback, ["RIBBON_SFTP_USERNAME"])),
        sftp_password=dict(type="str", no_log=True, fallback=(env_fallback, ["RIBBON_SFTP_PASSWORD"])),
        sftp_private_key=dict(type="path", no_log=False),
        sftp_known_hosts=dict(type="path"),
        sftp_host_key_checking=dict(type="bool", default=True),
        sftp_directory=dict(type="str", default="/opt/sonus/external"),
        tls_profile=dict(type="str", default="defaultTlsProfile"),
        pkcs12_passphrase=dict(type="str", no_log=True, fallback=(env_fallback, ["RIBBON_PKCS12_PASSPHRASE"])),
    )


def check_url(p: dict) -> None:
    url = p.get("api_url") or ""
    if not url.startswith(("https://", "http://")) or len(url.split("://", 1)[1].strip("/")) == 0:
        raise InputError("api_url", f"expected an URL such as https://sbc.example.com, got {url!r}")
    if p.get("timeout") is not None and p["timeout"] <= 0:
        raise InputError("timeout", "must be a positive number of seconds")
