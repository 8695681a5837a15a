"""The bad-input matrix (issue 10): one row per class of bad certificate material, per module that takes it.

Every row runs the real module (``ansible -m``) against the lab's emulators with good connection settings, so
that anything the module did not refuse would reach the device. Each cell asserts:

- the task failed, with a message that names the field;
- the reason is the shared gate's (``module_utils/_gate.py``) for the same input: the text the gate itself gives,
  field name aside, is in the message, so the same bad input gets the same words from every module;
- no request reached any device or API: the emulator's request log (read through its ``/_control`` API) and, for
  Ribbon SBC Core, the files on both nodes' SFTP roots, and for the store its directory, are the same before and after;
- no traceback in the output.
"""

from __future__ import annotations

import datetime
import json
import ssl
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils import _gate
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(cn: str, key, issuer_cn: str, issuer_key, *, ca: bool, start=NOW - DAY, end=NOW + 60 * DAY) -> str:
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(issuer_cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _key(key, passphrase: str | None = None) -> str:
    enc = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()


class Pki:
    """A root, an intermediate, a leaf and the bad material of every row."""

    def __init__(self):
        k = {n: ec.generate_private_key(ec.SECP256R1()) for n in
             ("root", "inter", "leaf", "other_root", "leaf2", "other", "unrelated", "expired_root")}
        self.root = _issue("matrix root", k["root"], "matrix root", k["root"], ca=True)
        self.inter = _issue("matrix intermediate", k["inter"], "matrix root", k["root"], ca=True)
        self.leaf = _issue("sbc.matrix.test", k["leaf"], "matrix intermediate", k["inter"], ca=False)
        self.key = _key(k["leaf"])
        self.enc_key = _key(k["leaf"], "right-passphrase")
        self.other_key = _key(k["other"])
        self.expired_leaf = _issue("expired.matrix.test", k["leaf"], "matrix intermediate", k["inter"], ca=False,
                                   start=NOW - 90 * DAY, end=NOW - 2 * DAY)
        self.future_leaf = _issue("future.matrix.test", k["leaf"], "matrix intermediate", k["inter"], ca=False,
                                  start=NOW + 5 * DAY, end=NOW + 90 * DAY)
        self.leaf2 = _issue("other.matrix.test", k["leaf2"], "other root", k["other_root"], ca=False)
        self.unrelated_ca = _issue("unrelated CA", k["unrelated"], "unrelated CA", k["unrelated"], ca=True)
        self.expired_ca = _issue("expired root", k["expired_root"], "expired root", k["expired_root"], ca=True,
                                 start=NOW - 400 * DAY, end=NOW - 3 * DAY)
        self.garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


P = Pki()


def gate_says(call, field: str) -> str:
    """What the gate itself says for the row's input, naming the field the module named."""
    with pytest.raises(InputError) as exc:
        call(field)
    return exc.value.msg


# -- the modules, with good connection settings to the lab --------------------------------------------------------

def _get(url: str, ca_file: str):
    ctx = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(url, context=ctx, timeout=30) as resp:
        return json.loads(resp.read())


def _not_control(entries) -> list:
    out = []
    for e in entries:
        path = e["path"] if isinstance(e, dict) else e[1]
        if not str(path).startswith("/_control"):
            out.append(e)
    return out


class Target:
    """One module of the matrix: its base args and what it can touch (``touched()`` is compared before/after)."""

    def __init__(self, key: str, module: str, args: dict, touched):
        self.key, self.module, self.args, self.touched = key, module, args, touched


@pytest.fixture(scope="module")
def targets(lab, tmp_path_factory) -> dict[str, Target]:
    out: dict[str, Target] = {}

    dev = next(iter(lab.part("audiocodes")["devices"].values()))
    out["audiocodes"] = Target(
        "audiocodes", "audiocodes_tls_context",
        {"api_url": dev["api_url"], "username": dev["username"], "password": dev["password"],
         "ca_path": dev["ca_file"], "context_index": 1, "context_name": "MATRIX", "certificate": P.leaf,
         "chain": P.inter + P.root, "private_key": P.key, "sync_delay": 0.05},
        lambda: _not_control(_get(dev["control_url"] + "/requests", dev["ca_file"])))

    core = lab.part("ribbon_core")
    out["ribbon_core"] = Target(
        "ribbon_core", "ribbon_certificate",
        {"platform": "core", "api_url": core["api_url"], "ca_path": core["ca_file"],
         "username": core["credentials"]["username"], "password": core["credentials"]["password"],
         "nodes": [{"name": n["name"], "host": n["host"], "port": n["port"], "host_key": n["host_key"]}
                   for n in core["nodes"]],
         "sftp_username": core["sftp"]["username"], "sftp_password": core["sftp"]["password"],
         "pkcs12_passphrase": "matrix-p12-passphrase", "name_prefix": "matrix", "certificate": P.leaf,
         "private_key": P.key, "ca_certificates": [P.inter, P.root]},
        lambda: (_not_control(_get(core["control_url"] + "/requests", core["ca_file"])),
                 [n["files"] for n in _get(core["control_url"] + "/state", core["ca_file"])["nodes"]]))

    edge = lab.part("ribbon_edge")
    out["ribbon_edge"] = Target(
        "ribbon_edge", "ribbon_certificate",
        {"platform": "edge", "api_url": edge["api_url"], "ca_path": edge["ca_file"],
         "username": edge["credentials"]["username"], "password": edge["credentials"]["password"],
         "certificate": P.leaf, "private_key": P.key, "ca_certificates": [P.inter, P.root]},
        lambda: _not_control(_get(edge["control_url"] + "/requests", edge["ca_file"])))

    gen = lab.part("genesys")
    out["genesys"] = Target(
        "genesys", "genesys_edge_certificate",
        {"api_url": gen["api_url"], "client_id": gen["client_id"], "client_secret": gen["client_secret"],
         "ca_path": lab.ca_file, "token_cache_dir": str(tmp_path_factory.mktemp("matrix-tokens")),
         "certificate": P.root, "name": "matrix"},
        lambda: _get(gen["control_url"] + "/requests", lab.ca_file)["requests"])

    store_dir = tmp_path_factory.mktemp("matrix-store")
    out["store"] = Target(
        "store", "certificate_store",
        {"path": str(store_dir), "group": "matrix", "passphrase": "matrix-store-passphrase",
         "certificate": P.leaf, "chain": P.inter, "privatekey_content": P.key},
        lambda: sorted(str(p.relative_to(store_dir)) for p in Path(store_dir).rglob("*")))
    return out


# -- the rows -----------------------------------------------------------------------------------------------------
# A row: (id, issue class, {target: (overrides, field)}, gate call for the expected reason).

SERVER_TARGETS = ("audiocodes", "ribbon_core", "ribbon_edge")


def _each(targets_: tuple, overrides: dict, field: str, *, per: dict | None = None) -> dict:
    cells = {t: (dict(overrides), field) for t in targets_}
    cells.update(per or {})
    return cells


ROWS = [
    ("expired-leaf", "1. material the device should never get",
     _each(SERVER_TARGETS, {"certificate": P.expired_leaf}, "certificate"),
     lambda f: _gate.server_certificate(P.expired_leaf, f)),
    ("not-yet-valid-leaf", "1. material the device should never get",
     _each(SERVER_TARGETS, {"certificate": P.future_leaf}, "certificate"),
     lambda f: _gate.server_certificate(P.future_leaf, f)),
    ("ca-as-server-certificate", "1. material the device should never get",
     _each(SERVER_TARGETS + ("store",), {"certificate": P.inter}, "certificate"),
     lambda f: _gate.server_certificate(P.inter, f)),
    ("expired-ca-without-allow", "1. material the device should never get (expired CA, allow_expired_ca unset)",
     {"audiocodes": ({"trusted_roots": [P.expired_ca]}, "trusted_roots"),
      "ribbon_core": ({"ca_certificates": [P.inter, P.root, P.expired_ca]}, "ca_certificates"),
      "ribbon_edge": ({"ca_certificates": [P.inter, P.root, P.expired_ca]}, "ca_certificates"),
      "genesys": ({"certificate": P.expired_ca}, "certificate")},
     lambda f: _gate.ca_certificates(P.expired_ca, f)),
    ("second-leaf-in-certificate", "2. leaves become trust anchors",
     _each(SERVER_TARGETS, {"certificate": P.leaf + P.leaf2}, "certificate"),
     lambda f: _gate.server_certificate(P.leaf + P.leaf2, f)),
    ("leaf-in-trust-field", "2. leaves become trust anchors",
     {"audiocodes": ({"trusted_roots": [P.leaf2]}, "trusted_roots"),
      "ribbon_core": ({"ca_certificates": [P.inter, P.root, P.leaf2]}, "ca_certificates"),
      "ribbon_edge": ({"ca_certificates": [P.inter, P.root, P.leaf2]}, "ca_certificates"),
      "genesys": ({"certificate": P.leaf2}, "certificate")},
     lambda f: _gate.ca_certificates(P.leaf2, f)),
    ("leaf-in-chain", "2. leaves become trust anchors",
     {"audiocodes": ({"chain": P.leaf2}, "chain"), "store": ({"chain": P.leaf2}, "chain")},
     lambda f: _gate.ca_certificates(P.leaf2, f)),
    ("key-in-certificate", "3. key material in a certificate field",
     _each(SERVER_TARGETS + ("genesys", "store"), {"certificate": P.other_key}, "certificate"),
     lambda f: _gate.server_certificate(P.other_key, f)),
    ("key-in-ca-field", "3. key material in a certificate field",
     {"audiocodes": ({"trusted_roots": [P.root + P.other_key]}, "trusted_roots"),
      "ribbon_core": ({"ca_certificates": [P.root + P.other_key]}, "ca_certificates"),
      "ribbon_edge": ({"ca_certificates": [P.root + P.other_key]}, "ca_certificates"),
      "genesys": ({"certificate": P.root + P.other_key}, "certificate"),
      "store": ({"chain": P.root + P.other_key}, "chain")},
     lambda f: _gate.ca_certificates(P.root + P.other_key, f)),
    ("garbage-certificate", "PEM that is not a certificate",
     _each(SERVER_TARGETS + ("genesys", "store"), {"certificate": P.garbage}, "certificate"),
     lambda f: _gate.server_certificate(P.garbage, f)),
    ("ca-after-leaf-issues-nothing", "chain that does not lead from the leaf",
     _each(SERVER_TARGETS, {"certificate": P.leaf + P.unrelated_ca}, "certificate",
           per={"audiocodes": ({"certificate": P.leaf + P.unrelated_ca, "chain": None}, "certificate")}),
     lambda f: _gate.server_material(certificate=P.leaf + P.unrelated_ca, certificate_field=f)),
    ("key-does-not-match", "key that does not match the certificate",
     _each(SERVER_TARGETS, {"private_key": P.other_key}, "private_key",
           per={"store": ({"privatekey_content": P.other_key}, "privatekey_content")}),
     lambda f: _gate.private_key(P.other_key, f, certificate=x509.load_pem_x509_certificate(P.leaf.encode()),
                                 certificate_field="certificate")),
    ("passphrase-for-unencrypted-key", "passphrase given for an unencrypted key",
     _each(SERVER_TARGETS, {"private_key_passphrase": "not-needed"}, "private_key"),
     lambda f: _gate.private_key(P.key, f, "not-needed")),
    ("wrong-passphrase", "encrypted key, wrong passphrase",
     _each(SERVER_TARGETS, {"private_key": P.enc_key, "private_key_passphrase": "wrong-passphrase"}, "private_key",
           per={"store": ({"privatekey_content": P.enc_key, "privatekey_passphrase": "wrong-passphrase"},
                          "privatekey_content")}),
     lambda f: _gate.private_key(P.enc_key, f, "wrong-passphrase")),
]

CELLS = [(row_id, cls, target, overrides, field, expected)
         for row_id, cls, cells, expected in ROWS for target, (overrides, field) in cells.items()]


@pytest.mark.parametrize("row_id,cls,target,overrides,field,expected", CELLS,
                         ids=[f"{c[0]}-{c[2]}" for c in CELLS])
def test_bad_input_is_refused_by_the_gate_before_any_request(row_id, cls, target, overrides, field, expected,
                                                             targets, run_module):
    t = targets[target]
    args = dict(t.args)
    for k, v in overrides.items():
        if v is None:
            args.pop(k, None)
        else:
            args[k] = v
    before = t.touched()
    result = run_module(t.module, args)
    after = t.touched()
    out = result["_stdout"]
    msg = result.get("msg", "")
    summary = f"[{cls}] {t.module} ({target}): {msg}"

    assert result.get("failed"), summary
    assert "Traceback" not in out and not msg.startswith("Unexpected") and "MODULE FAILURE" not in msg, summary
    # The field is named first, as InputError does ("<field>: <reason>"); list fields may add the index.
    used = msg.partition(": ")[0]
    assert used == field or used.startswith(field + "["), summary
    # The shared gate's words for the same input and field: the same refusal from every module.
    want = gate_says(expected, used)
    assert want in msg, f"{summary}\nthe gate says: {want}"
    assert after == before, f"{summary}\nrequests/writes happened: before={before!r} after={after!r}"


# The probes above would see a request or a write: the same modules (or their _info twins) with good input do.
PROBES = {
    "audiocodes": ("audiocodes_tls_context_info", ("api_url", "username", "password", "ca_path")),
    "ribbon_core": ("ribbon_certificate_info", ("platform", "api_url", "ca_path", "username", "password", "nodes",
                                                "sftp_username", "sftp_password")),
    "ribbon_edge": ("ribbon_certificate_info", ("platform", "api_url", "ca_path", "username", "password")),
    "genesys": ("genesys_edge_certificate_info", ("api_url", "client_id", "client_secret", "ca_path",
                                                  "token_cache_dir")),
    "store": ("certificate_store", None),
}


@pytest.mark.parametrize("target", sorted(PROBES))
def test_the_probes_see_requests_and_writes(target, targets, run_module):
    t = targets[target]
    module, keep = PROBES[target]
    args = {k: v for k, v in t.args.items() if keep is None or k in keep}
    before = t.touched()
    result = run_module(module, args)
    assert not result.get("failed"), result.get("msg")
    assert t.touched() != before
