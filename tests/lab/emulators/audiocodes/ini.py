"""The Mediant INI file as the emulator renders it (GET /api/v1/files/ini) and reads it
(PUT /api/v1/files/ini/incremental).

Facts: sbc-apis.md A3 (full INI download, "the uploaded file gets transformed by the device"), A4 (table
``TLSContexts``, row key ``Index``, the 7.4 column set; SIP Interface column ``TLSContext``; Proxy Set column
``TLSContextName``). The incremental INI upload's own page was not seen (A4): its answer shape is UNCONFIRMED, so
the emulator answers like the documented Incremental CLI Script (200 with ``description``, 400 bad file, 409 HA
sync) and is strict: unknown tables, unknown columns, a row that names a context that does not exist, or a SIP
Interface / Proxy Set row that does not exist yet are refused with 400.
"""

from __future__ import annotations

import re

from .device import MAX_CONTEXTS, DeviceError, new_context

# sbc-apis.md A4, the 7.4 template column set (without the optional bracketed columns).
TLS_COLUMNS = ["Name", "TLSVersion", "DTLSVersion", "ServerCipherString", "ClientCipherString",
               "ServerCipherTLS13String", "ClientCipherTLS13String", "KeyExchangeGroups", "RequireStrictCert",
               "TlsRenegotiation", "MiddleboxCompatMode", "OcspEnable", "OcspServerPrimary", "OcspServerSecondary",
               "OcspServerPort", "OcspDefaultResponse", "DHKeySize"]
TLS_DEFAULTS = ["", 0, 0, "DEFAULT", "DEFAULT", "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
                "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256", "X25519:P-256:P-384:X448", 0, 1, 0, 0,
                "0.0.0.0", "0.0.0.0", 2560, 0, 2048]
# sbc-apis.md A4: SIP Interface ``TLSContext`` (name) + ``TLSMutualAuthentication``; Proxy Set ``TLSContextName``.
# The other columns shown are an abbreviated set (INFER); only the TLS columns can be changed here.
SIP_COLUMNS = ["InterfaceName", "NetworkInterface", "ApplicationType", "TLSPort", "TLSContext",
               "TLSMutualAuthentication"]
PROXY_COLUMNS = ["ProxyName", "SRDName", "TLSContextName"]


def _q(value) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def render(conf: dict, status: dict) -> str:
    lines = [";**************", ";** Ini File **", ";**************", "",
             f";Board: {status.get('productType', 'Mediant SW')}", f";Serial Number: {status.get('serialNumber', '')}",
             "", "[SYSTEM Params]", "", "[ TLSContexts ]", "",
             "FORMAT Index = " + ", ".join(TLS_COLUMNS) + ";"]
    for i, ctx in sorted(conf["contexts"].items()):
        row = list(TLS_DEFAULTS)
        row[0], row[1] = ctx["name"], ctx.get("tls_version", 0)
        lines.append(f"TLSContexts {i} = " + ", ".join(_q(v) for v in row) + ";")
    lines += ["", "[ \\TLSContexts ]", "", "[ SIPInterface ]", "", "FORMAT Index = " + ", ".join(SIP_COLUMNS) + ";"]
    for i, s in sorted(conf["sip_interfaces"].items()):
        row = [s["name"], "eth0", 2, 5061, s["tls_context"], int(s.get("mutual_auth") or 0)]
        lines.append(f"SIPInterface {i} = " + ", ".join(_q(v) for v in row) + ";")
    lines += ["", "[ \\SIPInterface ]", "", "[ ProxySet ]", "", "FORMAT Index = " + ", ".join(PROXY_COLUMNS) + ";"]
    for i, p in sorted(conf["proxy_sets"].items()):
        lines.append(f"ProxySet {i} = " + ", ".join(_q(v) for v in [p["name"], "DefaultSRD", p["tls_context"]]) + ";")
    lines += ["", "[ \\ProxySet ]", ""]
    return "\r\n".join(lines)


_VALUE_RE = re.compile(r'\s*("([^"]*)"|[^,]*)\s*(?:,|$)')


def _values(text: str) -> list:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _VALUE_RE.match(text, pos)
        if not m or m.end() == pos:
            raise DeviceError(400, f"cannot parse INI values: {text!r}")
        raw = m.group(1).strip()
        out.append(m.group(2) if m.group(2) is not None else (int(raw) if raw.lstrip("-").isdigit() else raw))
        pos = m.end()
    return out


def parse_tables(text: str) -> dict[str, list[dict]]:
    """``{table: [{"Index": n, column: value, ...}]}`` from INI text with ``FORMAT`` lines."""
    tables: dict[str, list[dict]] = {}
    table, columns = None, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        m = re.fullmatch(r"\[\s*(\\?)(\w[\w ]*?)\s*\]", line)
        if m:
            if m.group(1):
                table, columns = None, None
            else:
                table, columns = m.group(2), None
                tables.setdefault(table, []) if table != "SYSTEM Params" else None
            continue
        if table is None or table == "SYSTEM Params":
            continue  # global parameters: not modelled by the emulator
        m = re.fullmatch(r"FORMAT\s+(?:\w+_)?Index\s*=\s*(.*?);?", line)
        if m:
            columns = [c.strip().split("_", 1)[-1] for c in m.group(1).split(",") if c.strip()]
            continue
        m = re.fullmatch(rf"{re.escape(table)}\s+(\d+)\s*=\s*(.*?);?", line)
        if not m or columns is None:
            raise DeviceError(400, f"INI line not understood in table {table}: {line!r}")
        values = _values(m.group(2))
        if len(values) != len(columns):
            raise DeviceError(400, f"INI row {table} {m.group(1)} has {len(values)} values for {len(columns)} columns")
        tables[table].append({"Index": int(m.group(1)), **dict(zip(columns, values))})
    return tables


def apply_incremental(conf: dict, text: str) -> list[str]:
    """Apply an incremental INI to ``conf`` (a copy the caller commits). Returns a line per change."""
    tables = parse_tables(text)
    if not tables:
        raise DeviceError(400, "The incremental INI file contains no table")
    done = []
    for table, rows in tables.items():
        if table == "TLSContexts":
            for row in rows:
                unknown = set(row) - {"Index", *TLS_COLUMNS}
                if unknown:
                    raise DeviceError(400, f"unknown TLSContexts column(s): {', '.join(sorted(unknown))}")
                i = row["Index"]
                if not 0 <= i < MAX_CONTEXTS:  # sbc-apis.md A4: up to 100 contexts
                    raise DeviceError(400, f"TLSContexts index {i} out of range (0-{MAX_CONTEXTS - 1})")
                ctx = conf["contexts"].get(i)
                if ctx is None:
                    if not row.get("Name"):
                        raise DeviceError(400, f"TLSContexts {i}: a new context needs a Name")
                    ctx = conf["contexts"][i] = new_context(row["Name"])
                    done.append(f"TLSContexts {i} created")
                if i == 0 and row.get("Name", "default") != "default":
                    raise DeviceError(400, "TLSContexts 0 is the default context and cannot be renamed")
                if "Name" in row and row["Name"] != ctx["name"]:
                    if any(c["name"] == row["Name"] for j, c in conf["contexts"].items() if j != i):
                        raise DeviceError(400, f"TLSContexts name {row['Name']!r} is already used")
                    ctx["name"] = row["Name"]
                if "TLSVersion" in row:
                    ctx["tls_version"] = row["TLSVersion"]
                done.append(f"TLSContexts {i} updated")
        elif table in ("SIPInterface", "ProxySet"):
            col = "TLSContext" if table == "SIPInterface" else "TLSContextName"
            store = conf["sip_interfaces" if table == "SIPInterface" else "proxy_sets"]
            allowed = {"Index", col} | ({"TLSMutualAuthentication"} if table == "SIPInterface" else set())
            for row in rows:
                unknown = set(row) - allowed
                if unknown:
                    raise DeviceError(400, f"{table}: only the {', '.join(sorted(allowed - {'Index'}))} column(s) can"
                                           f" be changed by the emulator (got {', '.join(sorted(unknown))})")
                if row["Index"] not in store:
                    raise DeviceError(400, f"{table} {row['Index']} does not exist")
                if "TLSMutualAuthentication" in row:
                    # sbc-apis.md A4 names the column; its values are not in the reference (UNCONFIRMED).
                    # Stricter choice: 0 (off) and 1 (on) only; anything else is refused.
                    if row["TLSMutualAuthentication"] not in (0, 1):
                        raise DeviceError(400, f"{table} {row['Index']}: TLSMutualAuthentication must be 0 or 1")
                    store[row["Index"]]["mutual_auth"] = row["TLSMutualAuthentication"]
                    done.append(f"{table} {row['Index']} TLSMutualAuthentication = {row['TLSMutualAuthentication']}")
                if col in row:
                    name = row[col]
                    if name and not any(c["name"] == name for c in conf["contexts"].values()):
                        raise DeviceError(400, f"{table} {row['Index']}: TLS context {name!r} does not exist")
                    store[row["Index"]]["tls_context"] = name
                    done.append(f"{table} {row['Index']} {col} = {name!r}")
        else:
            raise DeviceError(400, f"table {table} is not supported by this device emulator")
    return done
