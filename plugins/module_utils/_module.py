# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""``ByocModule``: ``AnsibleModule`` that never lets a secret of the task reach the output.

Every module of the collection constructs this instead of ``AnsibleModule`` (same arguments). On top of
ansible-core's own ``no_log`` handling it:

(a) closes ansible-core's no_log gap (ansible/ansible#81672): when an option of type ``dict`` (or list of dicts)
    gets something else, for example a string, ansible-core's collection of ``no_log`` values stops at that type
    error and the failure, invocation included, prints every ``no_log`` value of the task in clear. Here the
    argument spec is walked tolerantly (any depth, any wrong type) over the raw parameters as soon as they are
    loaded, and again before any output, and every ``no_log`` value is added to ``no_log_values`` together with
    the forms in which it can show up in a message: whitespace-stripped, escaped as ``repr()``/JSON would print
    it, and line by line;
(b) strips surrounding whitespace from ``no_log`` string options (top level and nested) after validation: a token
    from a vault block scalar or an environment variable often ends in a newline, which HTTP libraries refuse in a
    header, echoing the header (and the token) in their error;
(c) masks every PEM private key block found in ANY option, so that a key pasted into a certificate field is
    never echoed in the invocation, at any verbosity.

The module code stays the same: ``module = ByocModule(argument_spec=..., supports_check_mode=True)``.
"""

from __future__ import annotations

import json
import re
import typing as t
from collections.abc import Mapping

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict

# A private key block, or what is left of one when it is cut short (no END line): everything from BEGIN on.
_KEY_BLOCK_RE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_ARMOUR_RE = re.compile(r"^-----(?:BEGIN|END) [A-Z0-9 ]+-----$")
# Lines of a multi-line secret shorter than this are not masked on their own (masking very short strings
# everywhere would garble the output); PEM key bodies are masked line by line whatever their length.
_MIN_LINE = 8
_MIN_PEM_LINE = 4
_MAX_DEPTH = 32


def _leaf_strings(value: t.Any, depth: int = 0) -> t.Iterator[str]:
    """Every scalar of a (possibly nested) value as text: strings, numbers; keys of mappings too."""
    if depth > _MAX_DEPTH or value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", errors="replace")
    elif isinstance(value, (int, float)):
        yield str(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaf_strings(k, depth + 1)
            yield from _leaf_strings(v, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _leaf_strings(item, depth + 1)


def secret_forms(secret: str, *, pem: bool = False) -> set[str]:
    """The forms in which ``secret`` can appear in output: as is, stripped, escaped (repr, JSON, bytes repr) and,
    for a multi-line secret, line by line (so that a message that quotes part of it still masks it)."""
    forms: set[str] = set()
    if not isinstance(secret, str) or not secret.strip():
        return forms
    for s in (secret, secret.strip()):
        forms.add(s)
        forms.add(repr(s)[1:-1])
        forms.add(json.dumps(s)[1:-1])
        forms.add(json.dumps(s, ensure_ascii=False)[1:-1])
        try:
            forms.add(repr(s.encode("utf-8"))[2:-1])
        except UnicodeEncodeError:
            pass
    lines = [line.strip() for line in secret.splitlines()]
    if len(lines) > 1:
        minimum = _MIN_PEM_LINE if pem or _KEY_BLOCK_RE.search(secret) else _MIN_LINE
        body = [line for line in lines if not _ARMOUR_RE.match(line)]
        forms.update(line for line in body if len(line) >= minimum)
        joined = "".join(line for line in body if ":" not in line)  # PEM body without headers, on one line
        if len(joined) >= minimum:
            forms.add(joined)
    forms.discard("")
    return forms


def _as_dicts(value: t.Any) -> t.Iterator[t.Any]:
    """The mappings an option of type dict / list of dicts holds, tolerating any wrong type. A string is parsed
    the way ansible-core would (``k=v`` pairs or JSON); what cannot be parsed is yielded as is."""
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, str):
            try:
                item = check_type_dict(item)
            except (TypeError, ValueError):
                pass
        yield item


def _spec_has_no_log(spec: t.Any, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH or not isinstance(spec, Mapping):
        return False
    for opts in spec.values():
        if isinstance(opts, Mapping) and (opts.get("no_log") or _spec_has_no_log(opts.get("options"), depth + 1)):
            return True
    return False


def no_log_secrets(spec: t.Any, params: t.Any, depth: int = 0) -> set[str]:
    """Every value of a ``no_log`` option in ``params``, at any depth, whatever the types given (never raises)."""
    found: set[str] = set()
    if depth > _MAX_DEPTH or not isinstance(spec, Mapping) or not isinstance(params, Mapping):
        return found
    for name, opts in spec.items():
        if not isinstance(opts, Mapping):
            continue
        aliases = opts.get("aliases") or []
        names = [name] + [a for a in aliases if isinstance(a, str)] if isinstance(aliases, (list, tuple)) else [name]
        sub = opts.get("options")
        for key in names:
            if key not in params:
                continue
            value = params[key]
            if opts.get("no_log"):
                found.update(_leaf_strings(value))
            if isinstance(sub, Mapping):
                for item in _as_dicts(value):
                    if isinstance(item, Mapping):
                        found.update(no_log_secrets(sub, item, depth + 1))
                    elif _spec_has_no_log(sub):
                        # Stricter reading (ansible-core's own parser could not read it, so nobody can tell which
                        # part is the secret): the whole unreadable value of an option with secret sub-options.
                        found.update(_leaf_strings(item))
    return found


def private_key_blocks(params: t.Any) -> set[str]:
    """Every PEM private key block (or truncated block) in any string of ``params``, at any depth."""
    found: set[str] = set()
    for text in _leaf_strings(params):
        if "PRIVATE KEY-----" in text:
            found.update(m.group(0) for m in _KEY_BLOCK_RE.finditer(text))
    return found


def sensitive_strings(spec: t.Any, params: t.Any) -> set[str]:
    """Every string that must never appear in output for these parameters, in all the forms it may take."""
    forms: set[str] = set()
    for secret in no_log_secrets(spec, params):
        forms.update(secret_forms(secret))
    for block in private_key_blocks(params):
        forms.update(secret_forms(block, pem=True))
    return forms


def strip_no_log_strings(spec: t.Any, params: t.Any, depth: int = 0) -> None:
    """Strip surrounding whitespace from every ``no_log`` option of type str, in place, top level and nested."""
    if depth > _MAX_DEPTH or not isinstance(spec, Mapping) or not isinstance(params, dict):
        return
    for name, opts in spec.items():
        if not isinstance(opts, Mapping):
            continue
        aliases = opts.get("aliases") or []
        names = [name] + [a for a in aliases if isinstance(a, str)] if isinstance(aliases, (list, tuple)) else [name]
        for key in names:
            value = params.get(key)
            if opts.get("no_log") and opts.get("type", "str") == "str" and isinstance(value, str):
                params[key] = value.strip()
            sub = opts.get("options")
            if isinstance(sub, Mapping) and value is not None:
                for item in (value if isinstance(value, list) else [value]):
                    strip_no_log_strings(sub, item, depth + 1)


class ByocModule(AnsibleModule):
    """Drop-in ``AnsibleModule`` with the collection's secret handling (see the module docstring)."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        crash: str | None = None
        try:
            super().__init__(*args, **kwargs)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            # ansible-core's own argument validation can crash on some wrong types (for example set_fallbacks on a
            # dict option given a list holding a non-dict). Fail cleanly instead of a MODULE FAILURE traceback; the
            # exception's text is not shown (it may quote a value).
            if not isinstance(getattr(self, "params", None), dict) or not hasattr(self, "no_log_values"):
                raise
            crash = type(exc).__name__
        if crash is not None:
            self._byoc_mask()
            self.fail_json(
                msg=f"The options of {self._name} could not be validated: ansible-core's argument validation failed"
                    f" with {crash}. An option has a type it cannot handle (for example a list or a string where a"
                    " dictionary belongs); check the types of the options given against the module documentation.")
        self._byoc_mask()
        strip_no_log_strings(self.argument_spec, self.params)

    def _load_params(self) -> None:
        # The raw parameters, before any validation: the earliest point at which they can be known, so that the
        # invocation log written during __init__ is masked too.
        super()._load_params()
        self._byoc_mask()

    def _byoc_mask(self) -> None:
        """Add every sensitive string of the current parameters to ``no_log_values``. Never raises: a failure here
        must not turn a clean error into a crash (whatever it could not read stays masked by ansible-core)."""
        try:
            values = getattr(self, "no_log_values", None)
            if values is None:
                values = self.no_log_values = set()
            values.update(sensitive_strings(getattr(self, "argument_spec", None), getattr(self, "params", None)))
        except Exception:  # pylint: disable=broad-exception-caught  # pragma: no cover - defensive
            pass

    def fail_json(self, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        self._byoc_mask()
        super().fail_json(*args, **kwargs)

    def exit_json(self, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        self._byoc_mask()
        super().exit_json(*args, **kwargs)
