# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""TXT value quoting (RFC 1035 presentation format), DNS name normalisation and ``addr[:port]`` parsing.

Pure functions, no third-party imports, so that they are usable and testable everywhere.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

MAX_CHUNK = 255  # RFC 1035 3.3: a <character-string> is at most 255 octets


def quote_txt(value: str) -> str:
    """Presentation form of one TXT value: one or more quoted character strings of at most 255 octets each,
    with ``"`` and ``\\`` escaped. ``unquote_txt(quote_txt(v)) == v`` for every string."""
    data = value.encode("utf-8")
    chunks = [data[i:i + MAX_CHUNK] for i in range(0, len(data), MAX_CHUNK)] or [b""]
    return " ".join(_quote_chunk(c) for c in chunks)


def _quote_chunk(chunk: bytes) -> str:
    out = []
    for byte in chunk:
        ch = chr(byte)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def txt_chunks(value: str) -> list[bytes]:
    """The raw character strings (<= 255 octets each) that carry ``value`` on the wire."""
    data = value.encode("utf-8")
    return [data[i:i + MAX_CHUNK] for i in range(0, len(data), MAX_CHUNK)] or [b""]


def unquote_txt(text: str) -> str:
    """Decode a presentation-format TXT value into one string.

    Handles several quoted strings (``"abc" "def"`` -> ``abcdef``, as multi-string TXT records are served),
    unquoted words, and the escapes ``\\"``, ``\\\\`` and ``\\DDD``. Text without any quote is returned as is
    (some APIs hand back the bare value)."""
    text = text.strip()
    if '"' not in text and "\\" not in text:
        return text
    out = bytearray()
    i, n = 0, len(text)
    in_quotes = False
    while i < n:
        ch = text[i]
        if ch == '"':
            in_quotes = not in_quotes
            i += 1
            continue
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            digits = text[i + 1:i + 4]
            if len(digits) == 3 and digits.isdigit():
                out.append(int(digits) & 0xFF)
                i += 4
                continue
            out.extend(nxt.encode("utf-8"))
            i += 2
            continue
        if not in_quotes and ch.isspace():
            i += 1  # separator between character strings
            continue
        out.extend(ch.encode("utf-8"))
        i += 1
    return out.decode("utf-8", errors="replace")


def join_strings(strings: list[bytes] | tuple[bytes, ...]) -> str:
    """One TXT rdata as a user sees it: its character strings concatenated (RFC 7208 3.3 style)."""
    return b"".join(strings).decode("utf-8", errors="replace")


def normalize_name(name: str, field: str = "record") -> str:
    """Lower-case DNS name without the trailing dot; raise InputError naming ``field`` when it is not a name."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(field, "must be a non-empty DNS name such as _acme-challenge.sbc1.example.test")
    clean = name.strip().rstrip(".").lower()
    if not clean or ".." in clean or " " in clean:
        raise InputError(field, f"{name!r} is not a valid DNS name")
    labels = clean.split(".")
    if any(len(label) > 63 for label in labels) or len(clean) > 253:
        raise InputError(field, f"{name!r} is too long for DNS (labels of at most 63 and names of at most 253 characters)")
    return clean


def is_subdomain(name: str, zone: str) -> bool:
    """``name`` equals ``zone`` or lies below it (both normalised, no trailing dot)."""
    return name == zone or name.endswith("." + zone)


def relative_name(name: str, zone: str) -> str:
    """Name relative to the zone; ``@`` for the apex."""
    if name == zone:
        return "@"
    return name[: -(len(zone) + 1)]


def parse_addr(text: str, default_port: int, field: str) -> tuple[str, int]:
    """Parse ``addr``, ``addr:port``, ``[v6addr]:port`` or a bare IPv6 address into ``(host, port)``.

    ``host`` may also be a host name (resolved later). Raises InputError naming ``field`` on bad input."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(field, "contains an empty entry; give addresses as addr, addr:port or [ipv6]:port")
    raw = text.strip()
    host, port_text = raw, None
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise InputError(field, f"{raw!r}: missing ']' (write IPv6 with a port as [addr]:port)")
        host = raw[1:end]
        rest = raw[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise InputError(field, f"{raw!r}: expected ':port' after ']'")
            port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InputError(field, f"{raw!r}: {host!r} is not an IPv6 address") from None
    elif raw.count(":") > 1:
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            raise InputError(field, f"{raw!r} is not an address (write IPv6 with a port as [addr]:port)") from None
        host = raw
    elif ":" in raw:
        host, port_text = raw.split(":", 1)
    if not host:
        raise InputError(field, f"{raw!r}: the address part is empty")
    port = default_port
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InputError(field, f"{raw!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    return host, port


def check_host(host: str, field: str) -> str:
    """``host`` is an IP address or a host name that DNS can carry (RFC 1123 letters, digits and hyphens,
    labels of 1 to 63 characters, at most 253 in all); InputError naming ``field`` otherwise. Stricter than a
    resolver library (which fails with UnicodeError or resolves garbage through search domains), so that a bad
    name is refused before any server is contacted."""
    if not isinstance(host, str) or not host.strip():
        raise InputError(field, "is empty; give an IP address or a host name")
    text = host.strip()
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    shown = text if len(text) <= 80 and text.isprintable() else repr(text[:80]) + "..."
    if ":" in text:
        raise InputError(field, f"{shown} is neither an IP address nor a host name (give the port in its own option)")
    if len(name) > 253 or not all(0 < len(label) <= 63 for label in labels):
        raise InputError(field, f"{shown} is not a valid host name (labels of 1 to 63 characters, at most 253 in all)")
    for label in labels:
        if not all(c.isascii() and (c.isalnum() or c == "-") for c in label) or label[0] == "-" or label[-1] == "-":
            raise InputError(field, f"{shown} is not a valid host name: use letters, digits and hyphens"
                             " (an internationalised name in its xn-- form)")
    return name.lower()


def format_addr(host: str, port: int) -> str:
    """``addr:port``, with brackets for IPv6."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
