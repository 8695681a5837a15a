"""Contract: every emulator response the genesys_* modules use deserializes through the SDK's own models
(PureCloudPlatformClientV2 269.0.0) without losing a field, and no enum becomes ``outdated_sdk_version``
(genesys-cloud-api.md §2: the SDK silently drops unknown fields and replaces unknown enum values).

The raw JSON is fetched over the wire, deserialized with the SDK type the SDK method would use, serialized back with
``sanitize_for_serialization`` (wire camelCase, §2.10) and compared with the raw JSON, datetimes compared as instants.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_genesys_modules import CAS, CERT_RE, Genesys  # noqa: F401 - fixtures below reuse the helper

EDGES = "/api/v2/telephony/providers/edges"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture(scope="module")
def sdk():
    saved = os.environ.get("HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["HOME"] = home  # never read ~/.genesyscloudpython (§4.4)
        try:
            import PureCloudPlatformClientV2 as sdk_mod
        finally:
            if saved is None:
                os.environ.pop("HOME", None)
            else:
                os.environ["HOME"] = saved
    sdk_mod.Configuration().live_reload_config = False
    return sdk_mod


@pytest.fixture(scope="module")
def g(lab, tmp_path_factory):
    return Genesys(lab.part("genesys"), lab.ca_file, str(tmp_path_factory.mktemp("tokens")))


def norm(value):
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [norm(v) for v in value]
    if isinstance(value, str) and ISO.match(value):
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value


def roundtrip(sdk, data, klass: str):
    client = sdk.ApiClient()
    model = client._ApiClient__deserialize(data, klass)  # what ApiClient.deserialize does with the body
    back = client.sanitize_for_serialization(model)
    assert "outdated_sdk_version" not in json.dumps(back), (klass, back)
    assert norm(back) == norm(data), f"{klass}: fields lost or changed by the SDK model"
    return model


def ok(g, method, path, body=None):
    status, data = g.api(method, path, body)
    assert status == 200, (path, status, data)
    return data


def test_responses_roundtrip_through_sdk_models(g, sdk):
    g.control("POST", "/reset")
    chain = g.pem("chain_pem_file")

    # Trust store (§1.1) and certificate parsing (§1.2).
    details = ok(g, "POST", "/api/v2/certificate/details", {"certificate": chain})
    assert len(roundtrip(sdk, details, "ParsedCertificate").certificate_details) == 2
    created = ok(g, "POST", CAS, {"name": "contract", "certificate": CERT_RE.findall(chain)[0], "type": "REMOTE",
                                  "services": ["SIP"]})
    roundtrip(sdk, created, "DomainCertificateAuthority")
    listing = ok(g, "GET", CAS)
    model = roundtrip(sdk, listing, "CertificateAuthorityEntityListing")
    assert sorted(e.type for e in model.entities) == ["MANAGED", "REMOTE"]
    one = ok(g, "GET", f"{CAS}/{created['id']}")
    roundtrip(sdk, one, "DomainCertificateAuthority")
    updated = ok(g, "PUT", f"{CAS}/{created['id']}", {**one, "name": "contract 2"})
    roundtrip(sdk, updated, "DomainCertificateAuthority")

    # Trunks while down (errorInfo present) and trunk bases with properties (§1.4, §1.5).
    g.control("POST", "/reset")
    g.wait_round()
    trunks = ok(g, "GET", f"{EDGES}/trunks?pageSize=100&pageNumber=1&trunkType=EXTERNAL")
    model = roundtrip(sdk, trunks, "TrunkEntityListing")
    assert model.entities and all(t.options_status[0].error_info.text for t in model.entities)
    roundtrip(sdk, ok(g, "GET", f"{EDGES}/trunks/{trunks['entities'][0]['id']}"), "Trunk")
    bases = ok(g, "GET", f"{EDGES}/trunkbasesettings?pageSize=2&pageNumber=1&expand=properties")
    model = roundtrip(sdk, bases, "TrunkBaseEntityListing")
    assert model.next_uri and model.entities[0].properties["trunk_transport_serverProxyList"]["value"]["instance"]
    roundtrip(sdk, ok(g, "GET", f"{EDGES}/trunkbasesettings/{bases['entities'][0]['id']}"), "TrunkBase")

    # Trunks while up.
    for pem in CERT_RE.findall(chain):
        ok(g, "POST", CAS, {"name": "chain", "certificate": pem, "type": "REMOTE", "services": ["SIP"]})
    g.wait_round()
    model = roundtrip(sdk, ok(g, "GET", f"{EDGES}/trunks?pageSize=100&pageNumber=1"), "TrunkEntityListing")
    assert all(t.connected_status.connected for t in model.entities)

    # Edges (§1.3).
    edges = ok(g, "GET", f"{EDGES}?pageSize=25&pageNumber=1")
    roundtrip(sdk, edges, "EdgeEntityListing")
    roundtrip(sdk, ok(g, "GET", f"{EDGES}/{edges['entities'][0]['id']}"), "Edge")


def test_error_bodies_roundtrip(g, sdk):
    g.control("POST", "/reset")
    status, body = g.api("POST", "/api/v2/certificate/details", {"certificate": "nope"})
    assert status == 400
    roundtrip(sdk, body, "ErrorBody")
    status, body = g.api("GET", f"{CAS}/00000000-0000-0000-0000-000000000000")
    assert status == 404 and body["code"] == "not.found"
    roundtrip(sdk, body, "ErrorBody")
    managed = ok(g, "GET", CAS)["entities"][0]
    status, body = g.api("PUT", f"{CAS}/{managed['id']}", managed)
    assert status == 400
    roundtrip(sdk, body, "ErrorBody")
    remote_id = ok(g, "POST", CAS, {"name": "v", "certificate": g.pem("root_pem_file"), "type": "REMOTE",
                                    "services": ["SIP"]})["id"]
    stale = ok(g, "GET", f"{CAS}/{remote_id}")
    ok(g, "PUT", f"{CAS}/{remote_id}", {**stale, "name": "first"})
    status, body = g.api("PUT", f"{CAS}/{remote_id}", {**stale, "name": "second"})
    assert status == 409 and "version number" in body["message"]
    roundtrip(sdk, body, "ErrorBody")
    g.control("POST", "/faults", {"rate_limit": {"count": 1, "retry_after": 1}})
    status, body = g.api("GET", CAS)
    assert status == 429 and body["code"] == "too.many.requests.retry.after"
    model = roundtrip(sdk, body, "ErrorBody")
    assert model.limit.namespace == "platform.api"
    status, body = g.http("GET", CAS, headers={"Authorization": "Bearer nope"})
    assert status == 401
    roundtrip(sdk, body, "ErrorBody")


def test_trunks_by_name_down_for_dns_or_a_refused_client_certificate_roundtrip(g, sdk, lab):
    """The failure shapes the lab-truth Edges add (issue 9): an unresolvable proxy name, and an SBC that refuses the
    Edge's client certificate (the Ribbon Core pair, mutual authentication on, no MANAGED CA installed)."""
    g.control("POST", "/reset")
    core = lab.part("ribbon_core")
    lab_ca = Path(lab.ca_file).read_text()
    g.add_remote(lab_ca, name="lab CA (signs the Core's initial certificate)")
    s = core["sip_tls"]
    # The lab is shared: another test file may have installed its own chain on the Core. Trust the self-signed root
    # that the Core serves now too, so the Edge gets past the server certificate and the refusal is the Core's.
    shown = subprocess.run(["openssl", "s_client", "-connect", f"{s.get('host', '127.0.0.1')}:{s['port']}",
                            "-servername", s["name"], "-showcerts"], input="", capture_output=True, text=True,
                           timeout=30, check=False).stdout
    known = {x509.load_pem_x509_certificate(lab_ca.encode()).fingerprint(hashes.SHA256())}
    for block in CERT_RE.findall(shown):
        cert = x509.load_pem_x509_certificate(block.encode())
        if cert.issuer == cert.subject and cert.fingerprint(hashes.SHA256()) not in known:
            known.add(cert.fingerprint(hashes.SHA256()))
            g.add_remote(block, name="root the Core serves now")
    try:
        nowhere = g.control("POST", "/trunks", {"name": "Contract nowhere", "proxies": ["nowhere.lab.test:5061"]})
        refused = g.control("POST", "/trunks", {"name": "Contract core", "proxies": [f"{s['name']}:{s['port']}"]})
        g.control("POST", "/health/wait", {"rounds": 2, "timeout": 30})
        for made, needle in ((nowhere, "cannot resolve nowhere.lab.test"),
                             (refused, "refused the Edge's client certificate")):
            trunk = ok(g, "GET", f"{EDGES}/trunks/{made['trunks'][0]['id']}")
            model = roundtrip(sdk, trunk, "Trunk")
            assert model.connected_status.connected is False
            info = trunk["optionsStatus"][0]["errorInfo"]
            assert needle in info["text"], info
            assert info["details"]["hostname"] == trunk["optionsStatus"][0]["proxyAddress"].rsplit(":", 1)[0]
    finally:
        g.control("POST", "/reset")
