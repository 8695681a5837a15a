# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Hypothesis fuzz of the certificate gate and of the option helpers that guard secrets (issue 10).

The gate gets random and mutated PEM text, mixed blocks (leaves, CAs, expired ones, keys of every format, truncated
and garbage blocks) and values of the wrong type. Whatever it gets, it either accepts or raises ``InputError`` naming
the field it was given; it never raises anything else, never accepts key material in a certificate option, and
never echoes key text. The secret helpers (``_module``, ``_http``) never raise on any parameters and find every
secret wherever it sits.
"""

from __future__ import annotations

import datetime
import os
import string

import pytest
from ansible.module_utils.common.validation import check_type_dict
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.byoc.certificates.plugins.module_utils import _gate, _http, _module
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
# A fixed seed by default, so that CI is reproducible; BYOC_FUZZ_RANDOM=1 explores new examples (and
# BYOC_FUZZ_EXAMPLES=N runs more of them), which is how the fuzz is run by hand after a change to the gate.
FUZZ = settings(max_examples=int(os.environ.get("BYOC_FUZZ_EXAMPLES", "150")), deadline=None, database=None,
                derandomize=os.environ.get("BYOC_FUZZ_RANDOM") != "1", suppress_health_check=[HealthCheck.too_slow])


def _cert(cn, key, issuer_cn, issuer_key, *, ca, start=NOW - DAY, end=NOW + 30 * DAY):
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


_ca_key, _leaf_key, _rsa = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1()), \
    rsa.generate_private_key(public_exponent=65537, key_size=1024)
CA = _cert("fuzz CA", _ca_key, "fuzz CA", _ca_key, ca=True)
LEAF = _cert("fuzz.test", _leaf_key, "fuzz CA", _ca_key, ca=False)
EXPIRED_LEAF = _cert("old.fuzz.test", _leaf_key, "fuzz CA", _ca_key, ca=False, start=NOW - 60 * DAY, end=NOW - DAY)
EXPIRED_CA = _cert("old CA", _ca_key, "old CA", _ca_key, ca=True, start=NOW - 90 * DAY, end=NOW - DAY)
KEYS = [
    _leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode(),
    _leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode(),
    _rsa.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                       serialization.NoEncryption()).decode(),
    _leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"fuzz-pass")).decode(),
    _rsa.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                       serialization.BestAvailableEncryption(b"fuzz-pass")).decode(),
    _leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption()).decode(),
]
# Every line of a key body that is long enough to be recognisable: none may ever appear in a message.
KEY_LINES = sorted({line for k in KEYS for line in k.splitlines()
                    if len(line) >= 16 and not line.startswith("-----") and ":" not in line})
CERTS = [CA, LEAF, EXPIRED_LEAF, EXPIRED_CA]
B64 = string.ascii_letters + string.digits + "+/="


def _mutate(text: str, data) -> str:
    """Flip, drop or insert a few characters of ``text``."""
    chars = list(text)
    for _n in range(data.draw(st.integers(0, 4))):
        if not chars:
            break
        i = data.draw(st.integers(0, len(chars) - 1))
        op = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if op == "flip":
            chars[i] = data.draw(st.sampled_from(list(B64 + "-\n ")))
        elif op == "drop":
            del chars[i]
        else:
            chars.insert(i, data.draw(st.sampled_from(list(B64 + "-\n \x00é"))))
    return "".join(chars)


garbage_block = st.builds(
    lambda label, body: f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n",
    st.sampled_from(["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE", "PUBLIC KEY", "CERTIFICATE REQUEST",
                     "PKCS7", "PRIVATE KEY", "RSA PRIVATE KEY", "X"]),
    st.text(alphabet=B64 + "\n", max_size=120))
truncated_block = st.builds(lambda pem, cut: pem[:cut], st.sampled_from(CERTS + KEYS), st.integers(0, 400))


@st.composite
def pem_text(draw):
    """A value for a certificate or key option: mixed real, mutated, truncated and garbage blocks, or noise."""
    parts = draw(st.lists(st.one_of(
        st.sampled_from(CERTS), st.sampled_from(KEYS), garbage_block, truncated_block,
        st.text(max_size=40), st.sampled_from(["\n", "  ", "\r\n", "-----END CERTIFICATE-----\n"]),
    ), max_size=5))
    text = "".join(parts)
    if draw(st.booleans()):
        text = _mutate(text, draw(st.data()))
    return text


wrong_type = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), st.binary(max_size=20),
                       st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                                  st.text(max_size=5), max_size=2))
option_value = st.one_of(pem_text(), wrong_type)
field_name = st.sampled_from(["certificate", "chain", "trusted_roots[0]", "ca_certificates[2]", "private_key"])


def _has_key_material(value) -> bool:
    return isinstance(value, str) and bool(_gate._KEY_TRACE_RE.search(value))  # pylint: disable=protected-access


def _check_refusal(exc: InputError, field: str) -> None:
    assert exc.field == field and exc.msg.startswith(field + ": "), exc.msg
    text = exc.msg + repr(exc.details)
    leaked = [line for line in KEY_LINES if line in text]
    assert not leaked, "key text echoed in a refusal"


@FUZZ
@given(value=option_value, field=field_name)
def test_server_certificate_only_accepts_or_refuses_naming_the_field(value, field):
    try:
        leaf, extra = _gate.server_certificate(value, field)
    except InputError as exc:
        _check_refusal(exc, field)
        return
    assert not _has_key_material(value)  # key material in a certificate option is never accepted
    assert leaf is not None and all(_gate._is_ca(c) for c in extra)  # pylint: disable=protected-access


@FUZZ
@given(value=option_value, field=field_name, allow_expired=st.booleans(), allow_empty=st.booleans())
def test_ca_certificates_only_accepts_cas_or_refuses_naming_the_field(value, field, allow_expired, allow_empty):
    try:
        certs, warnings = _gate.ca_certificates(value, field, allow_expired=allow_expired, allow_empty=allow_empty)
    except InputError as exc:
        _check_refusal(exc, field)
        return
    assert not _has_key_material(value)
    # no leaf becomes an anchor
    assert all(_gate._is_ca(c) for c in certs)  # pylint: disable=protected-access
    assert all(w.startswith(field + ": ") for w in warnings)
    assert not any(line in "".join(warnings) for line in KEY_LINES)


@FUZZ
@given(value=option_value, passphrase=st.one_of(st.none(), st.just("fuzz-pass"), st.text(max_size=8)),
       with_cert=st.booleans())
def test_private_key_only_loads_or_refuses_without_echo(value, passphrase, with_cert):
    cert = x509.load_pem_x509_certificate(LEAF.encode()) if with_cert else None
    try:
        _gate.private_key(value, "private_key", passphrase, certificate=cert, certificate_field="certificate")
    except InputError as exc:
        _check_refusal(exc, "private_key")


@FUZZ
@given(certificate=option_value, key=st.one_of(st.none(), option_value), chain=st.one_of(st.none(), option_value),
       roots=st.one_of(st.none(), option_value), allow=st.booleans(), anchor=st.booleans())
def test_server_material_only_accepts_or_refuses_naming_a_field(certificate, key, chain, roots, allow, anchor):
    fields = ("certificate", "private_key", "chain", "trusted_roots")
    try:
        m = _gate.server_material(certificate=certificate, private_key=key, passphrase="fuzz-pass", chain=chain,
                                  trusted_roots=roots, allow_expired_ca=allow, require_anchor=anchor)
    except InputError as exc:
        assert exc.field in fields
        _check_refusal(exc, exc.field)
        return
    assert not _has_key_material(certificate) and not _has_key_material(chain) and not _has_key_material(roots)
    assert not _gate._is_ca(m.leaf)  # pylint: disable=protected-access
    assert all(_gate._is_ca(c) for c in m.intermediates + m.trusted_roots)  # pylint: disable=protected-access


def test_the_fuzzer_reaches_acceptance_and_every_refusal_kind():
    """Guard against a fuzzer that only ever produces garbage: the building blocks do reach each verdict."""
    assert _gate.server_certificate(LEAF + CA, "certificate")[0] is not None
    for bad in (KEYS[0], CA, EXPIRED_LEAF, LEAF + LEAF, "x", 5):
        with pytest.raises(InputError):
            _gate.server_certificate(bad, "certificate")
    with pytest.raises(InputError):
        _gate.ca_certificates(EXPIRED_CA, "chain")
    assert _gate.ca_certificates(EXPIRED_CA, "chain", allow_expired=True)[1]


# -- the secret helpers -------------------------------------------------------------------------------------------

secret_text = st.text(alphabet=string.ascii_letters + string.digits + "-_.+/=!@#$%^&() \n\t", min_size=1,
                      max_size=30).filter(lambda s: len(s.strip()) >= 3)
spec_leaf = st.fixed_dictionaries({}, optional={
    "no_log": st.booleans(),
    "type": st.sampled_from(["str", "dict", "list", "int", "raw"]),
    "aliases": st.one_of(st.lists(st.text(max_size=4), max_size=2), st.integers()),
})
arg_spec = st.recursive(
    st.dictionaries(st.text(min_size=1, max_size=6), spec_leaf, max_size=4),
    lambda children: st.dictionaries(st.text(min_size=1, max_size=6), st.one_of(
        spec_leaf, st.builds(lambda leaf, sub: dict(leaf, options=sub), spec_leaf, children)), max_size=4),
    max_leaves=8)
any_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                                   st.text(max_size=20), st.binary(max_size=8)),
                         lambda children: st.one_of(st.lists(children, max_size=3),
                                                    st.dictionaries(st.text(max_size=6), children, max_size=3)),
                         max_leaves=10)


@FUZZ
@given(spec=st.one_of(arg_spec, any_value),
       params=st.one_of(any_value, st.dictionaries(st.text(max_size=6), any_value, max_size=4)))
def test_secret_helpers_never_raise_on_any_spec_or_params(spec, params):
    found = _module.sensitive_strings(spec, params)
    assert isinstance(found, set)
    _module.strip_no_log_strings(spec, params)


@FUZZ
@given(secret=secret_text, nest=st.integers(0, 3), shape=st.sampled_from(["dict", "list", "text"]))
def test_a_no_log_value_is_found_at_any_depth_and_in_any_shape(secret, nest, shape):
    spec = {"token": {"type": "str", "no_log": True}}
    params = {"token": secret}
    for i in range(nest):
        spec = {f"level{i}": {"type": "list" if shape == "list" else "dict", "elements": "dict", "options": spec}}
        params = {f"level{i}": [params] if shape == "list" else params}
    if shape == "text" and nest:
        # the outer dict option given as key=value text, which ansible-core would reject with a type error
        outer = next(iter(params))
        params[outer] = f"token={secret}" if nest == 1 else "not parsable {"
    found = _module.sensitive_strings(spec, params)
    if shape == "text" and nest > 1:
        assert "not parsable {" in found  # unreadable value of a secret-bearing option: masked whole
    elif shape == "text" and nest == 1:
        text = params[next(iter(params))]
        try:
            check_type_dict(text)
        except (TypeError, ValueError):
            # ansible-core cannot read it either (e.g. "token= 000"): nobody can tell the secret, it is masked whole
            assert text in found
        else:
            # key=value parsing trims the value (and splits it at separators): what it yields is what must be found
            if not any(c in secret.strip() for c in ", =\n\t"):
                assert secret.strip() in found
    else:
        assert secret.strip() in found and repr(secret)[1:-1] in found


@FUZZ
@given(pem=st.sampled_from(KEYS), before=st.text(max_size=20), after=st.text(max_size=20),
       where=st.sampled_from(["top", "nested", "list"]))
def test_a_key_block_is_found_in_any_option(pem, before, after, where):
    value = before + pem + after
    params = {"top": value} if where == "top" else {"a": {"b": value}} if where == "nested" else {"l": [1, value]}
    found = _module.sensitive_strings({}, params)
    body = [line for line in pem.splitlines() if line and not line.startswith("-----") and ":" not in line]
    assert all(line in found for line in body)


@FUZZ
@given(secrets=st.lists(st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=6, max_size=20),
                        min_size=1, max_size=3),
       text=st.text(max_size=40))
def test_scrub_removes_every_sent_secret(secrets, text):
    headers = {f"X-H{i}": s for i, s in enumerate(secrets)}
    said = text + " ".join(secrets) + text
    cleaned = _http.scrub(said, _http.sent_secrets(headers))
    assert not any(s in cleaned for s in secrets)
