# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Untrusted XML, PKCS#12 building and input checks shared by the Ribbon code."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon import common


def self_signed(cn="x.example.test"):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert, key


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<root>&lol2;</root>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, b'<!doctype x SYSTEM "file:///etc/passwd"><x/>',
                                  b"<root><!ENTITY x 'y'></root>"])
def test_xml_with_dtd_or_entities_is_refused(body):
    with pytest.raises(ApiError, match="DTD"):
        common.parse_xml(body, "https://sbc/x")


@pytest.mark.parametrize("body", [b"", b"   ", b"<root><unclosed></root>", b"not xml"])
def test_empty_or_broken_xml_is_an_api_error(body):
    with pytest.raises(ApiError):
        common.parse_xml(body, "https://sbc/x")


def test_leaves_drop_namespaces():
    el = common.parse_xml(b'<certificate xmlns="urn:x" xmlns:y="urn:y" y:self="/a"><name>n</name>'
                          b'<state> enabled </state><sub><deep>1</deep></sub></certificate>', "w")
    assert common.local(el.tag) == "certificate"
    assert common.leaves(el) == {"name": "n", "state": "enabled"}


def test_pkcs12_round_trip_needs_the_passphrase():
    cert, key = self_signed()
    data = common.build_pkcs12("n", key, cert, [], "s3cret")
    assert common.pkcs12_certificate(data, "s3cret") == cert
    assert common.pkcs12_certificate(data, "wrong") is None
    assert common.pkcs12_certificate(b"garbage", "s3cret") is None


@pytest.mark.parametrize("url", ["sbc.example.com", "ftp://x", "https://", ""])
def test_bad_url_names_the_field(url):
    with pytest.raises(InputError) as err:
        common.check_url({"api_url": url, "timeout": 30})
    assert err.value.field == "api_url"


def test_bad_host_key_names_nodes():
    with pytest.raises(InputError) as err:
        common.SftpNode({"name": "a", "host": "127.0.0.1", "port": 1, "host_key": "nonsense"}, username="u",
                        password="p", directory="/opt/sonus/external", key_filename=None, known_hosts=None,
                        host_key_checking=True, timeout=1)
    assert err.value.field == "nodes" and "node a" in err.value.msg
