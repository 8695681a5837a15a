# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""TXT quoting, name normalisation and addr[:port] parsing."""

from __future__ import annotations

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import (
    format_addr,
    normalize_name,
    parse_addr,
    quote_txt,
    relative_name,
    txt_chunks,
    unquote_txt,
)


@pytest.mark.parametrize("value", ["abc", "with space", 'a"quote', "back\\slash", "x" * 600, "ünï", "a;b"])
def test_quote_round_trip(value):
    assert unquote_txt(quote_txt(value)) == value


def test_quote_escapes_and_splits():
    assert quote_txt('a"b\\c') == '"a\\"b\\\\c"'
    long = "y" * 300
    quoted = quote_txt(long)
    assert quoted == '"' + "y" * 255 + '" "' + "y" * 45 + '"'
    assert [len(c) for c in txt_chunks(long)] == [255, 45]


@pytest.mark.parametrize("text,expected", [
    ('"abc"', "abc"),
    ('"abc" "def"', "abcdef"),          # multi-string TXT as Route 53 / PowerDNS hand it back
    ("abc", "abc"),                     # unquoted (older Cloudflare records)
    ('"a\\"b"', 'a"b'),
    ('"\\065BC"', "ABC"),               # \DDD decimal escape
    ('  "x"  ', "x"),
])
def test_unquote(text, expected):
    assert unquote_txt(text) == expected


@pytest.mark.parametrize("text,port,expected", [
    ("192.0.2.1", 53, ("192.0.2.1", 53)),
    ("192.0.2.1:5353", 53, ("192.0.2.1", 5353)),
    ("[2001:db8::1]:5300", 53, ("2001:db8::1", 5300)),
    ("[2001:db8::1]", 53, ("2001:db8::1", 53)),
    ("2001:db8::1", 54, ("2001:db8::1", 54)),
    ("ns1.example.test:1053", 53, ("ns1.example.test", 1053)),
])
def test_parse_addr(text, port, expected):
    assert parse_addr(text, port, "nameservers") == expected


@pytest.mark.parametrize("text", ["", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:70000", "1.2.3.4:x", "[::1", "[zz]:53",
                                  "[::1]x", ":53"])
def test_parse_addr_errors_name_the_field(text):
    with pytest.raises(InputError) as err:
        parse_addr(text, 53, "resolver")
    assert err.value.field == "resolver"
    assert err.value.msg.startswith("resolver:")


def test_format_addr():
    assert format_addr("127.0.0.1", 53) == "127.0.0.1:53"
    assert format_addr("::1", 53) == "[::1]:53"


def test_normalize_name():
    assert normalize_name("_ACME-challenge.Example.TEST.") == "_acme-challenge.example.test"
    for bad in ["", " ", "a..b", "x" * 64 + ".test"]:
        with pytest.raises(InputError) as err:
            normalize_name(bad, "record")
        assert err.value.field == "record"


def test_relative_name():
    assert relative_name("example.test", "example.test") == "@"
    assert relative_name("_acme-challenge.sbc1.example.test", "example.test") == "_acme-challenge.sbc1"
