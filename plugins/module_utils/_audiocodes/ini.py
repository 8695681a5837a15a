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
    """``{name: {"index": n, "tls_context": name}}`` for the SIP Interface or Proxy Set table."""
    name_col, ctx_col = ("InterfaceName", "TLSContext") if table == "SIPInterface" else ("ProxyName", "TLSContextName")
    return {r.get(name_col, ""): {"index": int(r["Index"]), "tls_context": r.get(ctx_col, "")}
            for r in tables.get(table, [])}


def check_name(name: str, field: str) -> str:
    if not name or not name.strip():
        raise InputError(field, "must not be empty")
    if any(ch in name for ch in '"\r\n;') or not name.isprintable():
        raise InputError(field, f"{name!r} contains a character an INI value cannot hold (double quote, ';' or a"
                                " line break)")
    return name


def incremental(table: str, column: str, rows: dict[int, str]) -> str:
    """A one-column incremental INI for ``table``: ``{index: value}``."""
    lines = [f"[ {table} ]", "", f"FORMAT Index = {column};"]
    lines += [f'{table} {i} = "{v}";' for i, v in sorted(rows.items())]
    lines += ["", f"[ \\{table} ]", ""]
    return "\r\n".join(lines)
