# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reading the Mediant INI tables (sbc-apis.md A3/A4) and writing incremental INI files."""

from __future__ import annotations

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes import ini
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

INI_74 = r"""
;** Ini File **
[SYSTEM Params]
SyslogServerIP = 10.0.0.1

[ TLSContexts ]

FORMAT Index = Name, TLSVersion, DTLSVersion, ServerCipherString, ClientCipherString, KeyExchangeGroups, DHKeySize;
TLSContexts 0 = "default", 0, 0, "DEFAULT", "DEFAULT", "X25519:P-256", 2048;
TLSContexts 10 = "Teams, primary", 12, 0, "DEFAULT", "DEFAULT", "X25519:P-256:P-384:X448", 2048;

[ \TLSContexts ]

[ SIPInterface ]

FORMAT Index = InterfaceName, NetworkInterface, TLSContext, TLSMutualAuthentication;
SIPInterface 0 = "Genesys", "eth0", "Teams, primary", 0;
SIPInterface 1 = "Carrier", "eth1", "", 0;

[ \SIPInterface ]

[ ProxySet ]
FORMAT Index = ProxyName, SRDName, TLSContextName;
ProxySet 3 = "EdgeProxy", "DefaultSRD", "default";
[ \ProxySet ]
"""

# sbc-apis.md A4: older firmware prefixes the FORMAT columns with the table name.
INI_OLD = """
[ TLSContexts ]
FORMAT TLSContexts_Index = TLSContexts_Name, TLSContexts_TLSVersion, TLSContexts_ServerCipherString;
TLSContexts 0 = "default", 0, "RC4:EXP";
TLSContexts 2 = "BYOC", 0, "ALL:!ADH";
[ \\TLSContexts ]
"""


def test_tables_of_a_74_ini():
    tables = ini.parse_tables(INI_74)
    assert ini.tls_contexts(tables) == {0: "default", 10: "Teams, primary"}
    assert ini.bindings(tables, "SIPInterface") == {
        "Genesys": {"index": 0, "tls_context": "Teams, primary", "mutual_auth": 0},
        "Carrier": {"index": 1, "tls_context": "", "mutual_auth": 0},
    }
    assert ini.bindings(tables, "ProxySet") == {"EdgeProxy": {"index": 3, "tls_context": "default",
                                                              "mutual_auth": None}}


def test_older_firmware_prefixed_columns():
    assert ini.tls_contexts(ini.parse_tables(INI_OLD)) == {0: "default", 2: "BYOC"}


def test_empty_or_unrelated_ini():
    assert ini.tls_contexts(ini.parse_tables("")) == {}
    assert ini.bindings(ini.parse_tables("[SYSTEM Params]\nA = 1\n"), "SIPInterface") == {}


def test_incremental_round_trip():
    text = ini.incremental("SIPInterface", "TLSContext", {1: "BYOC", 0: "BYOC"})
    assert text.splitlines()[2] == "FORMAT Index = TLSContext;"
    rows = ini.parse_tables(text)["SIPInterface"]
    assert rows == [{"TLSContext": "BYOC", "Index": "0"}, {"TLSContext": "BYOC", "Index": "1"}]


def test_one_write_for_several_tables():
    text = ini.incremental_tables({"SIPInterface": ("TLSContext", {0: "BYOC-B"}),
                                   "ProxySet": ("TLSContextName", {2: "BYOC-B", 1: "BYOC-B"}),
                                   "Empty": ("X", {})})
    tables = ini.parse_tables(text)
    assert set(tables) == {"SIPInterface", "ProxySet"}
    assert tables["ProxySet"] == [{"TLSContextName": "BYOC-B", "Index": "1"}, {"TLSContextName": "BYOC-B", "Index": "2"}]


@pytest.mark.parametrize("name", ["", "  ", 'a"b', "a;b", "a\nb", "Größe", "\u0411YOC"])
def test_names_an_ini_value_cannot_hold(name):
    with pytest.raises(InputError) as err:
        ini.check_name(name, "context_name")
    assert err.value.field == "context_name"


def test_plain_names_pass():
    assert ini.check_name("BYOC Premises-1", "context_name") == "BYOC Premises-1"
    assert ini.check_context_name("BYOC Premises-1.b_2", "context_name") == "BYOC Premises-1.b_2"


@pytest.mark.parametrize("name", ["-lead", " BYOC", "a" * 32, "a,b", "a/b", "Ärger", 5])
def test_context_names_the_module_refuses(name):
    with pytest.raises(InputError) as err:
        ini.check_context_name(name, "context_name")
    assert err.value.field == "context_name"
