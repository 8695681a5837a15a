# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Reading the Mediant INI file's tables and writing small incremental INI files.

sbc-apis.md A3: there is no reliable list-contexts endpoint; the dependable way is ``GET /api/v1/files/ini`` and
the ``[ TLSContexts ]`` table. A4: the row key is ``Index``; column names come from the ``FORMAT`` line and older
firmware prefixes them with the table name (``TLSContexts_Name``); the SIP Interface's context column is
``TLSContext`` and the Proxy Set's is ``TLSContextName``. Changes go through ``PUT files/ini/incremental`` with a
``FORMAT`` line that lists only the columns being set.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

_SECTION = re.compile(r"^\[\s*(\\?)\s*([A-Za-z][\w ]*?)\s*\]$")
_FORMAT = re.compile(r"^FORMAT\s+(?:\w+_)?Index\s*=\s*(.*?)\s*;?\s*$")


def _split_values(text: str) -> list[str]:
    values, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            continue
        if ch == "," and not quoted:
            values.append(cur.strip())
            cur = ""
            continue
        cur += ch
    values.append(cur.strip())
    return values


def parse_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """``{table: [{"Index": "0", "Name": "default", ...}]}`` for every table in the INI text. Unknown lines are
    skipped: the downloaded INI is "transformed by the device" (A3) and carries many other sections."""
    tables: dict[str, list[dict[str, str]]] = {}
    table: str | None = None
    columns: list[str] | None = None
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        m = _SECTION.match(line)
        if m:
            table, columns = (None, None) if m.group(1) else (m.group(2), None)
            continue
        if table is None:
            continue
        m = _FORMAT.match(line)
        if m:
            columns = [c.strip().split("_", 1)[-1] if c.strip().startswith(table + "_") else c.strip()
                       for c in m.group(1).split(",")]
            tables.setdefault(table, [])
            continue
        m = re.match(rf"^{re.escape(table)}\s+(\d+)\s*=\s*(.*?)\s*;?\s*$", line)
        if m and columns:
            row = dict(zip(columns, _split_values(m.group(2))))
            row["Index"] = m.group(1)
            tables.setdefault(table, []).append(row)
    return tables


def tls_contexts(tables: dict) -> dict[int, str]:
    return {int(r["Index"]): r.get("Name", "") for r in tables.get("TLSContexts", [])}


def bindings(tables: dict, table: str) -> dict[str, dict]:
    """``{name: {"index": n, "tls_context": name, "mutual_auth": int | None}}`` for the SIP Interface or Proxy Set
    table. ``mutual_auth`` is the SIP Interface's ``TLSMutualAuthentication`` column (sbc-apis.md A4); ``None``
    where the row has no such column (Proxy Sets, older INI files)."""
    name_col, ctx_col = ("InterfaceName", "TLSContext") if table == "SIPInterface" else ("ProxyName", "TLSContextName")
    out = {}
    for r in tables.get(table, []):
        mutual = r.get("TLSMutualAuthentication")
        try:
            mutual = int(mutual) if mutual not in (None, "") else None
        except ValueError:
            mutual = None
        out[r.get(name_col, "")] = {"index": int(r["Index"]), "tls_context": r.get(ctx_col, ""), "mutual_auth": mutual}
    return out


def check_name(name: t.Any, field: str) -> str:
    """A name that goes into an INI value (SIP Interface, Proxy Set): not empty, printable ASCII, and none of the
    characters an INI value cannot hold. sbc-apis.md A3/A4 show only ASCII names and say nothing about other
    characters; stricter choice: ASCII only (the upload is ASCII, and a name the device cannot store is refused
    here, before any request, rather than half way through a run)."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(field, "must not be empty")
    if not name.isascii():
        raise InputError(field, f"{ascii(name)} contains non-ASCII characters; the device's INI tables hold ASCII"
                                " names only")
    if any(ch in name for ch in '"\r\n;') or not name.isprintable():
        raise InputError(field, f"{name!r} contains a character an INI value cannot hold (double quote, ';' or a"
                                " line break)")
    return name


# sbc-apis.md A4 shows TLS context names such as "default" and "Teams" and says nothing about their allowed
# characters or length (UNCONFIRMED). Stricter choice: letters, digits, '-', '_', '.' and spaces, starting with a
# letter or digit, at most 31 characters; anything else is refused before any request.
_CONTEXT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,30}")
CONTEXT_NAME_MAX = 31


def check_context_name(name: t.Any, field: str) -> str:
    check_name(name, field)
    if not _CONTEXT_NAME_RE.fullmatch(name) or name != name.strip():
        raise InputError(field, f"{name!r} is not a TLS context name this module writes: use letters, digits, '-',"
                                f" '_', '.' and inner spaces, starting with a letter or digit, at most"
                                f" {CONTEXT_NAME_MAX} characters")
    return name


def incremental(table: str, column: str, rows: dict[int, str]) -> str:
    """A one-column incremental INI for ``table``: ``{index: value}``."""
    return incremental_tables({table: (column, rows)})


def incremental_tables(tables: dict[str, tuple[str, dict[int, str]]]) -> str:
    """One incremental INI file with a one-column section per table: ``{table: (column, {index: value})}``.
    Tables without rows are left out. sbc-apis.md A4: ``PUT files/ini/incremental`` loads a partial INI without a
    reset; several sections in one file are one write, so a re-bind of SIP Interfaces and Proxy Sets is one
    request (issue 9 section 4)."""
    lines: list[str] = []
    for table, (column, rows) in tables.items():
        if not rows:
            continue
        lines += [f"[ {table} ]", "", f"FORMAT Index = {column};"]
        lines += [f'{table} {i} = "{v}";' for i, v in sorted(rows.items())]
        lines += ["", f"[ \\{table} ]", ""]
    return "\r\n".join(lines)
