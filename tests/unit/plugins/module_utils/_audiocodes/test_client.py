# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The AudioCodes client: URL building, multipart, 409 retries with progress, error messages."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes import client as ac
from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    InputError,
    WaitTimeout,
)

from ansible_collections.byoc.certificates.tests.unit.plugins.module_utils._audiocodes.fakes import FakeHttp, FakeMediant

PARAMS = {"api_url": "https://sbc.test/api/v1", "username": "Admin", "password": "pw"}


@pytest.mark.parametrize("params,url", [
    ({"api_url": "https://sbc.test/api/v1/"}, "https://sbc.test/api/v1"),
    ({"host": "sbc.test"}, "https://sbc.test:443/api/v1"),
    ({"host": "192.0.2.1", "port": 8443}, "https://192.0.2.1:8443/api/v1"),
    ({"host": "2001:db8::1", "port": 443}, "https://[2001:db8::1]:443/api/v1"),
])
def test_base_url(params, url):
    assert ac.base_url(params) == url


@pytest.mark.parametrize("params,field", [
    ({"api_url": "sbc.test/api/v1"}, "api_url"),
    ({"api_url": "https://sbc.test/"}, "api_url"),
    ({"host": "a b"}, "host"),
    ({"host": "sbc.test", "port": 70000}, "port"),
])
def test_bad_connection_options(params, field):
    with pytest.raises(InputError) as err:
        ac.base_url(params)
    assert err.value.field == field


def test_credentials_required_and_named():
    with pytest.raises(InputError) as err:
        ac.validate_connection({"api_url": "https://sbc.test/api/v1", "password": "x"})
    assert err.value.field == "username" and "AUDIOCODES_USERNAME" in err.value.msg
    with pytest.raises(InputError) as err:
        ac.validate_connection({"api_url": "https://sbc.test/api/v1", "username": "x"})
    assert err.value.field == "password" and "AUDIOCODES_PASSWORD" in err.value.msg


def test_argspec_secrets():
    spec = ac.connection_argument_spec()
    assert spec["password"]["no_log"] is True
    assert spec["password"]["fallback"][1] == ["AUDIOCODES_PASSWORD"]
    assert spec["username"]["fallback"][1] == ["AUDIOCODES_USERNAME"]
    assert spec["validate_certs"]["default"] is True


def test_multipart_has_one_part_named_file():
    body, ctype = ac.multipart({"file": ("cert.pem", b"-----BEGIN CERTIFICATE-----\n")})
    msg = BytesParser(policy=policy.default).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    [part] = list(msg.iter_parts())
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename() == "cert.pem"
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_payload(decode=True) == b"-----BEGIN CERTIFICATE-----\n"


def _client(dev, **kw):
    warnings, sleeps = [], []
    c = ac.AudioCodesClient(PARAMS, http=FakeHttp(dev), warn=warnings.append, sleep=sleeps.append, **kw)
    return c, warnings, sleeps


def test_409_is_retried_with_doubling_delay_and_reported():
    dev = FakeMediant()
    busy = {"description": "Device is currently performing HA synchronization"}
    dev.script = [("certificate", 409, busy)] * 3
    c, warnings, sleeps = _client(dev, sync_retries=5, sync_delay=2)
    c.upload("files/tls/0/certificate", "cert.pem", "x")
    assert sleeps == [2, 4, 8]
    assert [w["attempt"] for w in c.sync_waits] == [1, 2, 3]
    assert all(w["request"] == "PUT files/tls/0/certificate" for w in c.sync_waits)
    assert len(warnings) == 3 and "retry 1/5 after 2 s" in warnings[0] and "synchronization" in warnings[0]


def test_409_delay_is_capped():
    dev = FakeMediant()
    dev.script = [("certificate", 409, {"description": "sync"})] * 4
    c, _w, sleeps = _client(dev, sync_retries=4, sync_delay=40)
    c.upload("files/tls/0/certificate", "cert.pem", "x")
    assert sleeps == [40, 60, 60, 60]


def test_409_exhausted_is_a_wait_timeout_with_the_history():
    dev = FakeMediant()
    dev.script = [("saveConfiguration", 409, {"description": "sync"})] * 3
    c, _w, _s = _client(dev, sync_retries=2, sync_delay=1)
    with pytest.raises(WaitTimeout) as err:
        c.save_configuration()
    assert "409" in err.value.msg and "sync_retries" in err.value.msg
    assert len(err.value.details["sync_retries"]) == 2


def test_409_on_a_read_is_not_retried():
    dev = FakeMediant()
    dev.script = [("status", 409, {"description": "sync"})]
    c, _w, sleeps = _client(dev)
    with pytest.raises(ApiError):
        c.status()
    assert sleeps == []


def test_401_and_403_say_what_to_do():
    dev = FakeMediant()
    dev.script = [("status", 401, {"description": "Unauthorized"}), ("files/ini", 403, {"description": "Forbidden"})]
    c, _w, _s = _client(dev)
    with pytest.raises(AuthenticationFailure) as err:
        c.status()
    assert "HTTP 401" in err.value.msg and "'Admin'" in err.value.msg and "AUDIOCODES_PASSWORD" in err.value.msg
    with pytest.raises(AuthenticationFailure) as err:
        c.ini()
    assert "HTTP 403" in err.value.msg and "Administrator" in err.value.msg


def test_empty_content_is_400_and_means_none():
    dev = FakeMediant()
    c, _w, _s = _client(dev)
    dev.contexts[0]["cert"] = ""
    assert c.certificate(0) is None
    assert c.trusted_roots(0) == ""
    assert c.private_key_status(0) == {"size": 0, "valid": False}


def test_alarms_204_is_empty():
    dev = FakeMediant()
    dev.script = [("alarms/active", 204, {})]
    c, _w, _s = _client(dev)
    assert c.alarms() == []
