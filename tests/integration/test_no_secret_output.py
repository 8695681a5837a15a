"""No secret in any output of any failure path (issue 10, "Secrets").

Every module runs its failure paths through a real ``ansible -m`` at ``-vvv``, with EVERY secret option set: to a
marker string (``MRK<random>...``) for passwords, tokens and passphrases, and to a real PEM private key for key
options. All output (stdout and stderr) is then searched for the marker and for every line of every key body.

The paths: wrong types for dict and list options (ansible-core's no_log gap, ansible/ansible#81672), bad PEM, a key
pasted into a certificate field, an unreachable endpoint, tokens with a trailing newline, wrong passphrases, and a
401 from the lab's emulators (the only cases that need the lab).
"""

from __future__ import annotations

import datetime
import secrets
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

RUN = secrets.token_hex(6)
PREFIX = f"MRK{RUN}"


def mark(name: str) -> str:
    return f"{PREFIX}{name}"


def _key_pem(key, passphrase: str | None = None) -> str:
    enc = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()


def _cert(subject: str, key, issuer_name: str, issuer_key, *, ca: bool) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=60))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


class Material:
    """A CA, a leaf with its key (plain and encrypted with a marker passphrase), and a second, unrelated key."""

    def __init__(self):
        ca_key, self.leaf_key, other = (ec.generate_private_key(ec.SECP256R1()) for _n in range(3))
        self.ca = _cert("secrets test CA", ca_key, "secrets test CA", ca_key, ca=True)
        self.leaf = _cert("sbc.secrets.test", self.leaf_key, "secrets test CA", ca_key, ca=False)
        self.passphrase = mark("keypass")
        self.key = _key_pem(self.leaf_key)
        self.enc_key = _key_pem(self.leaf_key, self.passphrase)
        self.other_key = _key_pem(other)
        self.key_lines = sorted({line for pem in (self.key, self.enc_key, self.other_key)
                                 for line in pem.splitlines() if line and not line.startswith("-----")})


M = Material()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DEAD = closed_port()
DEAD_URL = f"https://127.0.0.1:{DEAD}"  # connection refused: the clients retry with back-off (slow), used sparingly
# An HTTPS endpoint whose certificate nobody trusts: the connection fails at once (verification failures are not
# retried). Set by the ``untrusted_endpoint`` fixture.
ENDPOINT = {"url": DEAD_URL}


@pytest.fixture(scope="module", autouse=True)
def untrusted_endpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("untrusted")
    (tmp / "cert.pem").write_text(M.leaf)
    (tmp / "key.pem").write_text(M.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ENDPOINT["url"] = f"https://127.0.0.1:{server.server_address[1]}"
    yield
    server.shutdown()
    server.server_close()


def url() -> str:
    return ENDPOINT["url"]


def assert_no_secret(result: dict, *, invocation: bool = True) -> None:
    out = result["_stdout"]
    leaked = [PREFIX] if PREFIX in out else []
    leaked += [line for line in M.key_lines if line in out]
    assert not leaked, f"secret material in the output ({len(leaked)} pieces, first: {leaked[0][:12]}...)"
    assert result.get("failed"), {k: v for k, v in result.items() if k != "_stdout"}
    if invocation:  # the invocation (where ansible-core's gap prints secrets) was really printed, masked
        assert "module_args" in out


# -- the secret options of each module, all set --------------------------------------------------------------------

def audiocodes(**extra) -> dict:
    args = {"api_url": f"{url()}/api/v1", "username": "Admin", "password": mark("ac-password"), "timeout": 2,
            "context_index": 1, "certificate": M.leaf, "chain": M.ca, "private_key": M.enc_key,
            "private_key_passphrase": M.passphrase, "sync_retries": 0}
    args.update(extra)
    return args


def audiocodes_info(**extra) -> dict:
    args = {"api_url": f"{url()}/api/v1", "username": "Admin", "password": mark("aci-password"), "timeout": 2}
    args.update(extra)
    return args


def store(tmp, **extra) -> dict:
    args = {"path": str(tmp), "group": "g1", "passphrase": mark("store-pass"), "certificate": M.leaf,
            "chain": M.ca, "privatekey_content": M.enc_key, "privatekey_passphrase": M.passphrase,
            "account": {"directory": "https://acme.secrets.test/dir", "key_content": M.other_key,
                        "key_passphrase": mark("acct-pass")}}
    args.update(extra)
    return args


def store_s3(**extra) -> dict:
    return {"bucket": "b", "endpoint_url": url(), "access_key": mark("s3-access"),
            "secret_key": mark("s3-secret"), "session_token": mark("s3-session"), **extra}


def dns(provider: str, **extra) -> dict:
    args = {
        "provider": provider, "record": "_acme-challenge.sbc.secrets.test", "value": ["v"],
        "rfc2136": {"server": "127.0.0.1", "port": DEAD, "key_name": "k", "key_secret": mark("tsig"), "timeout": 1},
        "route53": {"access_key": "AKIAEXAMPLE", "secret_key": mark("r53-secret"), "session_token": mark("r53-tok"),
                    "endpoint_url": url(), "region": "us-east-1"},
        "powerdns": {"url": url(), "api_key": mark("pdns-key")},
        "cloudflare": {"api_token": mark("cf-token"), "api_url": f"{url()}/client/v4"},
        "azure": {"subscription_id": "00000000-0000-0000-0000-000000000000", "tenant_id": "t", "client_id": "c",
                  "client_secret": mark("az-secret"), "resource_manager_url": url(), "authority_url": url()},
    }
    args.update(extra)
    return args


def genesys(tmp, **extra) -> dict:
    args = {"api_url": url(), "client_id": "client", "client_secret": mark("gc-secret"),
            "token_cache_dir": str(tmp), "request_timeout": 2}
    args.update(extra)
    return args


def ribbon(platform: str = "core", **extra) -> dict:
    args = {"platform": platform, "api_url": url(), "username": "admin", "password": mark("rb-password"),
            "timeout": 2, "sftp_username": "sftp", "sftp_password": mark("rb-sftp"),
            "pkcs12_passphrase": mark("rb-p12"), "certificate": M.leaf, "private_key": M.enc_key,
            "private_key_passphrase": M.passphrase, "ca_certificates": [M.ca]}
    if platform == "core":
        args["nodes"] = [{"name": "a", "host": "127.0.0.1", "port": DEAD},
                         {"name": "b", "host": "127.0.0.1", "port": DEAD}]
    args.update(extra)
    return args


def ribbon_info(platform: str = "core", **extra) -> dict:
    args = ribbon(platform, **extra)
    for k in ("certificate", "private_key", "private_key_passphrase", "ca_certificates"):
        args.pop(k, None)
    return args


# -- failure paths that need no lab ---------------------------------------------------------------------------------

CASES = [
    # AudioCodes
    ("ac-list-given-dict", "audiocodes_tls_context", lambda t: audiocodes(trusted_roots={"a": M.ca})),
    ("ac-int-given-text", "audiocodes_tls_context", lambda t: audiocodes(context_index="one")),
    ("ac-bad-pem", "audiocodes_tls_context", lambda t: audiocodes(certificate="not a certificate")),
    ("ac-key-in-certificate", "audiocodes_tls_context", lambda t: audiocodes(certificate=M.key)),
    ("ac-key-in-chain", "audiocodes_tls_context", lambda t: audiocodes(chain=M.ca + M.other_key)),
    ("ac-wrong-passphrase", "audiocodes_tls_context",
     lambda t: audiocodes(private_key_passphrase=mark("wrong-pass"))),
    ("ac-unreachable-newline-password", "audiocodes_tls_context",
     lambda t: audiocodes(password=mark("ac-nl") + "\n")),
    ("ac-info-refused", "audiocodes_tls_context_info",
     lambda t: audiocodes_info(api_url=f"{DEAD_URL}/api/v1", password=mark("x") + "\n")),
    ("ac-info-int-given-dict", "audiocodes_tls_context_info", lambda t: audiocodes_info(context_index={"a": 1})),
    # Store
    ("store-account-given-text", "certificate_store", lambda t: store(t, account="oops")),
    ("store-s3-given-text", "certificate_store", lambda t: store(t, backend="s3", s3="oops")),
    ("store-failure-given-list", "certificate_store", lambda t: store(t, failure=["x", 1])),
    ("store-key-in-certificate", "certificate_store", lambda t: store(t, certificate=M.key)),
    ("store-wrong-key-passphrase", "certificate_store",
     lambda t: store(t, privatekey_passphrase=mark("wrong") + "\n")),
    ("store-s3-unreachable", "certificate_store", lambda t: store(t, backend="s3", s3=store_s3())),
    ("store-info-s3-given-text", "certificate_store_info",
     lambda t: {"backend": "s3", "s3": "a,b", "group": "g", "passphrase": mark("si-pass")}),
    ("store-info-path-is-a-file", "certificate_store_info",
     lambda t: {"path": __file__, "group": "g", "passphrase": mark("si-pass2")}),
    ("decision-key-for-a-dict", "certificate_renewal_decision",
     lambda t: {"group": "g", "names": ["a.test"], "current": M.key}),
    # DNS: every provider's secrets set in every run
    ("dns-rfc2136-given-text", "dns01_record", lambda t: dns("rfc2136", rfc2136="server")),
    ("dns-cloudflare-given-list", "dns01_record", lambda t: dns("cloudflare", cloudflare=["a", "b"])),
    ("dns-cloudflare-newline-unreachable", "dns01_record",
     lambda t: dns("cloudflare", cloudflare={"api_token": mark("cf-nl") + "\n", "api_url": f"{url()}/client/v4"})),
    ("dns-powerdns-newline-refused", "dns01_record",
     lambda t: dns("powerdns", powerdns={"url": DEAD_URL, "api_key": mark("pdns-nl") + "\n"})),
    ("dns-powerdns-inner-newline", "dns01_record",
     lambda t: dns("powerdns", powerdns={"url": url(), "api_key": mark("pdns-a") + "\n" + mark("pdns-b")})),
    ("dns-rfc2136-bad-secret", "dns01_record", lambda t: dns("rfc2136")),
    ("dns-route53-unreachable", "dns01_record", lambda t: dns("route53")),
    ("dns-azure-unreachable", "dns01_record", lambda t: dns("azure")),
    # Genesys
    ("gc-key-in-certificate", "genesys_edge_certificate", lambda t: genesys(t, certificate=M.key)),
    ("gc-bad-pem", "genesys_edge_certificate", lambda t: genesys(t, certificate="garbage")),
    ("gc-list-given-dict", "genesys_edge_certificate", lambda t: genesys(t, certificate=M.ca, services={"a": 1})),
    ("gc-unreachable-newline-secret", "genesys_edge_certificate",
     lambda t: genesys(t, certificate=M.ca, client_secret=mark("gc-nl") + "\n")),
    ("gc-info-unreachable", "genesys_edge_certificate_info", genesys),
    ("gc-prune-store-s3-unreachable", "genesys_edge_certificate",
     lambda t: genesys(t, state="pruned", groups=["g"], store={"backend": "s3", "s3": store_s3()})),
    ("gc-store-s3-given-text", "genesys_edge_certificate",
     lambda t: genesys(t, certificate=M.ca, group="g", store={"backend": "s3", "s3": "oops"})),
    ("gc-trunks-given-dict", "genesys_trunk_info", lambda t: genesys(t, trunk_ids={"a": 1})),
    ("gc-edges-given-dict", "genesys_edge_info", lambda t: genesys(t, edge_ids={"a": 1})),
    ("gc-edges-unreachable-newline-secret", "genesys_edge_info",
     lambda t: genesys(t, sbc_addresses=["sbc.secrets.test"], client_secret=mark("gc-edge-nl") + "\n")),
    # Ribbon
    ("rb-nodes-given-text", "ribbon_certificate", lambda t: ribbon(nodes="a,b")),
    ("rb-nodes-with-stray", "ribbon_certificate",
     lambda t: ribbon(nodes=[{"host": "127.0.0.1"}, "b", 3])),
    ("rb-csr-given-text", "ribbon_certificate", lambda t: ribbon(state="csr", csr="x")),
    ("rb-key-in-certificate", "ribbon_certificate", lambda t: ribbon(certificate=M.key)),
    ("rb-key-in-ca", "ribbon_certificate", lambda t: ribbon(ca_certificates=[M.other_key])),
    ("rb-unreachable", "ribbon_certificate", lambda t: ribbon(password=mark("rb-nl") + "\n")),
    ("rb-edge-unreachable", "ribbon_certificate", lambda t: ribbon("edge")),
    ("rb-info-nodes-given-text", "ribbon_certificate_info", lambda t: ribbon_info(nodes="a,b")),
    # Verify and report (action plugins: they run in-process and print no invocation)
    ("tls-endpoints-given-text", "tls_endpoint_info", lambda t: tls_probe(endpoints="a,b")),
    ("tls-key-in-ca", "tls_endpoint_info", lambda t: tls_probe(ca_certificates=M.ca + M.other_key)),
    ("tls-key-mismatch", "tls_endpoint_info", lambda t: tls_probe(client_private_key=M.other_key)),
    ("tls-encrypted-key", "tls_endpoint_info", lambda t: tls_probe(client_private_key=M.enc_key)),
    ("tls-key-given-dict", "tls_endpoint_info", lambda t: tls_probe(client_private_key={"k": M.key})),
    ("report-groups-given-text", "fleet_report", lambda t: report(t, groups="a,b")),
    ("report-bad-status", "fleet_report", lambda t: report(t, groups=[{"group": "g", "status": "nope"}])),
    ("plan-hosts-given-text", "fleet_plan", lambda t: plan(t, hosts="a,b")),
    ("plan-connection-given-list", "fleet_plan", lambda t: plan(t, second={"connection": ["a", "b"]})),
    ("plan-bad-zone-every-secret-set", "fleet_plan",
     lambda t: plan(t, second={"maintenance_window": {"timezone": "Mars/Olympus_Mons"}})),
    ("lease-s3-unreachable", "certificate_store_lease",
     lambda t: {"backend": "s3", "s3": store_s3(), "group": "g1", "passphrase": mark("lease-pass"), "wait": 1}),
    ("lease-ttl-given-text", "certificate_store_lease",
     lambda t: {"path": str(t), "group": "g1", "ttl": "long", "s3": store_s3(), "passphrase": mark("lease-pass2")}),
    # ansible-core's own argument check quoted this value (a list where the dict with secret sub-options belongs)
    ("lease-s3-list-of-lists", "certificate_store_lease",
     lambda t: {"path": str(t), "group": "g1", "s3": [[mark("lease-s3-in-list")]], "passphrase": mark("lease-pass3")}),
]
IN_PROCESS = {"tls_endpoint_info", "fleet_report", "fleet_plan", "certificate_store_lease"}  # action plugins that do the work themselves


def plan(tmp, second: dict | None = None, **extra) -> dict:
    host = {"host": "h1", "group": "g1", "vendor": "ribbon_core", "names": ["a.secrets.test"],
            "connection": {"api_url": url(), "username": "admin", "password": mark("plan-pw") + "\n",
                           "sftp_username": "u", "sftp_password": mark("plan-sftp"),
                           "pkcs12_passphrase": mark("plan-p12"), "nodes": [{"host": "127.0.0.1", "port": DEAD}]},
            "acme": {"directory": "https://acme.secrets.test/dir"},
            "store": {"path": str(tmp), "s3": {"secret_key": mark("plan-s3")}}}
    args = {"hosts": [host, dict(host, host="h2", group="g2", **(second or {}))], "timeout": 2}
    args.update(extra)
    return args


def tls_probe(**extra) -> dict:
    args = {"endpoints": [{"name": "sbc.secrets.test", "host": "127.0.0.1", "port": DEAD}], "ca_certificates": M.ca,
            "client_certificate": M.leaf, "client_private_key": M.key, "timeout": 2}
    args.update(extra)
    return args


def report(tmp, **extra) -> dict:
    args = {"groups": [], "dir": str(tmp / "report"), "heartbeat_url": f"http://127.0.0.1:{DEAD}/{mark('hb')}"}
    args.update(extra)
    return args


@pytest.mark.parametrize("case,module,make", CASES, ids=[c[0] for c in CASES])
def test_failure_path_prints_no_secret(case, module, make, run_module, tmp_path):
    result = run_module(module, make(tmp_path), verbosity=3)
    assert_no_secret(result, invocation=module not in IN_PROCESS)


# -- failure paths against the lab: the device or API refuses the credentials --------------------------------------

def test_audiocodes_401_prints_no_secret(lab, run_module):
    dev = next(iter(lab.part("audiocodes")["devices"].values()))
    wrong = audiocodes(api_url=dev["api_url"], ca_path=dev["ca_file"], password=mark("wrong-ac") + "\n")
    for module, args in (("audiocodes_tls_context", wrong),
                         ("audiocodes_tls_context_info", audiocodes_info(api_url=dev["api_url"],
                                                                         ca_path=dev["ca_file"]))):
        result = run_module(module, args, verbosity=3)
        assert_no_secret(result)
        assert "401" in result["msg"]


@pytest.mark.parametrize("platform", ["core", "edge"])
def test_ribbon_401_prints_no_secret(platform, lab, run_module):
    part = lab.part(f"ribbon_{platform}")
    extra = {"api_url": part["api_url"], "ca_path": part["ca_file"], "username": part["credentials"]["username"]}
    if platform == "core":
        extra["nodes"] = [{"name": n["name"], "host": n["host"], "port": n["port"], "host_key": n["host_key"]}
                          for n in part["nodes"]]
    for module, args in (("ribbon_certificate", ribbon(platform, **extra)),
                         ("ribbon_certificate_info", ribbon_info(platform, **extra))):
        result = run_module(module, args, verbosity=3)
        assert_no_secret(result)
        assert "401" in result["msg"] or "credentials" in result["msg"] or "password" in result["msg"]


def test_genesys_401_prints_no_secret(lab, run_module, tmp_path):
    part = lab.part("genesys")
    for module, extra in (("genesys_edge_certificate", {"certificate": M.ca}), ("genesys_edge_certificate_info", {}),
                          ("genesys_trunk_info", {}), ("genesys_edge_info", {})):
        args = genesys(tmp_path, api_url=part["api_url"], client_id=part["client_id"], ca_path=lab.ca_file,
                       client_secret=mark("gc-wrong") + "\n", **extra)
        result = run_module(module, args, verbosity=3)
        assert_no_secret(result)
        assert "client_secret" in result["msg"]


def test_cloudflare_refusal_prints_no_secret(lab, run_module):
    part = lab.part("cloudflare")
    args = dns("cloudflare", record=f"_acme-challenge.{part['zone']}",
               cloudflare={"api_token": mark("cf-wrong") + "\n", "api_url": part["api_url"],
                           "ca_path": lab.ca_file})
    result = run_module("dns01_record", args, verbosity=3)
    assert_no_secret(result)
