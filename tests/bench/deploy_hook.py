"""Deploy hook for the certbot and lego runs of the benchmark (tests/bench/compare.py): what a user of those tools
would write to push a new certificate to an SBC over its REST API. It does not use the collection's code.

    deploy_hook.py DEVICES_JSON HOST          (certbot --deploy-hook: $RENEWED_LINEAGE/{cert,chain,privkey}.pem;
                                               lego --run-hook: $LEGO_CERT_PATH, $LEGO_CERT_KEY_PATH)

Per vendor, the usual documented sequence (facts in shared/reference/sbc-apis.md):

- AudioCodes (A1-A5): HTTP Basic; read the INI to find the TLS context the SIP Interface uses, PUT the private key,
  then the certificate, into it, the issuing chain into its trusted roots (incremental), then ``saveConfiguration``.
  In place, as such scripts do (no staged context, no rollback).
- Ribbon SBC Core (B1, B2, B4, B5): the PKCS#12 over SFTP to /opt/sonus/external on both nodes, a new ``local`` PKI
  certificate object (a new name: an object in use is never overwritten, B6), then the TLS profile re-pointed.
- Ribbon SBC Edge (C1, C2, C3): login (session cookie + CSRF token), the issuing CAs into CA slots first (C3: CA
  first), then certificate 1 as PKCS#12, logout.

Prints one line; exits non-zero on any failure (the tools then report the deploy as failed).
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import re
import secrets
import ssl
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

requests_made = 0


def material() -> tuple[bytes, bytes, bytes]:
    """(leaf PEM, chain PEM, key PEM) from certbot's or lego's environment."""
    if os.environ.get("RENEWED_LINEAGE"):
        d = Path(os.environ["RENEWED_LINEAGE"])
        return (d / "cert.pem").read_bytes(), (d / "chain.pem").read_bytes(), (d / "privkey.pem").read_bytes()
    full = Path(os.environ["LEGO_CERT_PATH"]).read_bytes()  # lego: leaf then issuer chain
    blocks = [b"-----BEGIN CERTIFICATE-----" + b for b in full.split(b"-----BEGIN CERTIFICATE-----")[1:]]
    return blocks[0], b"".join(blocks[1:]), Path(os.environ["LEGO_CERT_KEY_PATH"]).read_bytes()


def call(opener, method: str, url: str, *, data: bytes | None = None, headers: dict | None = None) -> bytes:
    global requests_made
    requests_made += 1
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with opener.open(req, timeout=60) as resp:
        return resp.read()


def multipart(field_bytes: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.pem\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + field_bytes + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def audiocodes(dev: dict, leaf: bytes, chain: bytes, key: bytes) -> None:
    ctx = ssl.create_default_context(cafile=dev["ca_file"])
    ctx.check_hostname = False  # the factory certificate names ACL_<serial>, not the address (A4)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))
    auth = "Basic " + base64.b64encode(f"{dev['username']}:{dev['password']}".encode()).decode()
    # A3/A4: which TLS context does SIPInterface 0 use? (the full INI: [ TLSContexts ] and [ SIPInterface ] rows)
    ini = call(opener, "GET", dev["api_url"] + "/files/ini", headers={"Authorization": auth}).decode("utf-8", "replace")
    rows = {m.group(1): m.group(2) for m in re.finditer(r'^TLSContexts (\d+) = "([^"]*)"', ini, re.M)}
    sip = re.search(r'^SIPInterface 0 = "[^"]*", "[^"]*", \d+, \d+, "([^"]*)"', ini, re.M)
    bound = sip.group(1) if sip and sip.group(1) else "default"
    index = next((i for i, name in rows.items() if name == bound), "0")
    base = dev["api_url"] + f"/files/tls/{index}"
    for path, data in (("/privateKey", key), ("/certificate", leaf), ("/trustedRoot/incremental", chain)):
        body, ctype = multipart(data)
        call(opener, "PUT", base + path, data=body, headers={"Authorization": auth, "Content-Type": ctype})
    call(opener, "POST", dev["api_url"] + "/actions/saveConfiguration", data=b"",
         headers={"Authorization": auth, "Content-Length": "0"})


def p12(leaf: bytes, chain: bytes, key: bytes, passphrase: str, name: str) -> bytes:
    cert = x509.load_pem_x509_certificate(leaf)
    extra = [x509.load_pem_x509_certificate(b"-----BEGIN CERTIFICATE-----" + b)
             for b in chain.split(b"-----BEGIN CERTIFICATE-----")[1:]]
    return pkcs12.serialize_key_and_certificates(
        name.encode(), serialization.load_pem_private_key(key, None), cert, extra or None,
        serialization.BestAvailableEncryption(passphrase.encode()))


def ribbon_core(dev: dict, leaf: bytes, chain: bytes, key: bytes) -> None:
    import paramiko

    global requests_made
    name = f"bench-{int(time.time())}-{secrets.token_hex(2)}"
    passphrase = secrets.token_urlsafe(12)
    data = p12(leaf, chain, key, passphrase, name)
    for node in dev["nodes"]:
        ktype, kb64 = node["host_key"].split()[:2]
        transport = paramiko.Transport((node["host"], int(node["port"])))
        try:
            transport.connect(hostkey=paramiko.ECDSAKey(data=base64.b64decode(kb64)) if "ecdsa" in ktype else None,
                              username=dev["sftp_username"], password=dev["sftp_password"])
            sftp = paramiko.SFTPClient.from_transport(transport)
            with sftp.open(f"/opt/sonus/external/{name}.p12", "wb") as fh:
                fh.write(data)
            requests_made += 1
        finally:
            transport.close()
    ctx = ssl.create_default_context(cafile=dev["ca_file"])
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))
    auth = "Basic " + base64.b64encode(f"{dev['username']}:{dev['password']}".encode()).decode()
    yang = {"Authorization": auth, "Content-Type": "application/vnd.yang.data+xml"}
    obj = (f"<certificate><name>{name}</name><fileName>{name}.p12</fileName><passPhrase>{passphrase}</passPhrase>"
           f"<type>local</type><state>enabled</state></certificate>").encode()
    call(opener, "PUT", f"{dev['api_url']}/api/config/system/security/pki/certificate/{name}", data=obj, headers=yang)
    prof = f"<tlsProfile><name>{dev['tls_profile']}</name><serverCertName>{name}</serverCertName></tlsProfile>".encode()
    call(opener, "PATCH", f"{dev['api_url']}/api/config/profiles/security/tlsProfile/{dev['tls_profile']}",
         data=prof, headers=yang)


def ribbon_edge(dev: dict, leaf: bytes, chain: bytes, key: bytes) -> None:
    ctx = ssl.create_default_context(cafile=dev["ca_file"])
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(jar))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = call(opener, "POST", dev["api_url"] + "/rest/login", headers=form,
                data=urllib.parse.urlencode({"Username": dev["username"], "Password": dev["password"]}).encode())
    if b"<http_code>200</http_code>" not in body:
        raise RuntimeError("login refused")
    csrf = next((c.value for c in jar if c.name == "csrfp_token"), "")
    hdr = {**form, "X-CSRF-Token": csrf}

    def imp(slot: int, fields: dict, ca: bool = False) -> None:
        answer = call(opener, "POST", f"{dev['api_url']}/rest/certificate/{slot}?action=import", headers=hdr,
                      data=urllib.parse.urlencode(fields).encode())
        if ca and b'code="15017"' in answer:
            # C3: no two certificates with the same CN. The unit already trusts a CA of that name (e.g. installed by
            # an earlier rotation); if it is not this one, the server certificate's chain check below refuses it.
            print(f"deploy_hook: {dev.get('sip_tls', {}).get('name', '?')}: CA slot {slot}: a CA with this CN is "
                  f"already installed; kept", flush=True)
            return
        if b"<http_code>200</http_code>" not in answer:
            raise RuntimeError(f"certificate {slot} import refused: {answer[:300]!r}")

    # C3: the issuing CAs first, root first (slots 3..): the tools deliver the intermediate only; the root is the
    # ACME CA's, which the user downloads once ($BYOC_BENCH_ACME_ROOT, Pebble's management /roots/0).
    blocks = [b"-----BEGIN CERTIFICATE-----" + b for b in chain.split(b"-----BEGIN CERTIFICATE-----")[1:]]
    if os.environ.get("BYOC_BENCH_ACME_ROOT"):
        blocks.append(Path(os.environ["BYOC_BENCH_ACME_ROOT"]).read_bytes())
    for i, block in enumerate(reversed(blocks)):
        imp(3 + i, {"CertFileOperation": "1", "CertFileContent": block.decode(), "CertFileName": f"acme-ca-{i}.pem"},
            ca=True)
    passphrase = secrets.token_urlsafe(12)
    imp(1, {"CertFileOperation": "1", "CertFileName": "server.p12", "PKCS12Password": passphrase,
            "CertFileContent": base64.b64encode(p12(leaf, chain, key, passphrase, "server")).decode()})
    call(opener, "POST", dev["api_url"] + "/rest/logout", headers=hdr, data=b"")


def main(argv: list[str]) -> int:
    devices = json.loads(Path(argv[1]).read_text())
    dev = devices[argv[2]]
    leaf, chain, key = material()
    started = time.monotonic()
    {"ac": audiocodes, "core": ribbon_core, "edge": ribbon_edge}[dev["kind"]](dev, leaf, chain, key)
    print(f"deploy_hook: {argv[2]} ({dev['kind']}): {requests_made} requests, {time.monotonic() - started:.2f}s",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
