# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""A hardened Genesys Cloud client on the official SDK (PureCloudPlatformClientV2), shared by the genesys_* modules.

What it adds to the SDK:

- The host is always explicit, from a region name or a URL (``resolve_api_url``). The SDK is loaded lazily (only
  when a module first talks to the API, and then only the model and API files it uses), and its configuration
  singleton is created with ``HOME`` pointed at an empty temporary directory, so ``~/.genesyscloudpython/config``
  (which can override the host and the gateway) is never read; its config live-reload is switched off and its
  file watcher stopped.
- Every HTTP request goes through ``_Transport`` (an SDK ``AbstractHttpClient``) on urllib3 with no hidden retries:
  TLS verification with an optional CA file, a timeout, request counting, 429 handling that waits
  ``Retry-After`` only up to ``max_retry_after`` seconds (the SDK's default urllib3 policy would sleep for hours) and
  fails clearly beyond it, and bounded retries of 502/503/504 for idempotent methods.
- One re-authentication on 401 (the SDK only refreshes code-authorization grants).
- ``update_with_retry``: a 409 version conflict is handled by reading again and retrying.
- A token cache shared by every task and host of a playbook: one file per (client id, login host), mode 0600 in a
  0700 directory, guarded by a lock so parallel forks mint one token, and bound to the secret by a salted hash.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import ssl
import sys
import tempfile
import time
import typing as t
from urllib.parse import urlencode, urlsplit

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ConnectionFailure,
    InputError,
    MissingDependency,
    NotFound,
)

try:
    import fcntl

    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not POSIX
    HAS_FCNTL = False

# genesys-cloud-api.md §4.2 (SDK purecloud_region_hosts.py): region -> API host. Login host = api. -> login.
REGIONS = {
    "us_east_1": "https://api.mypurecloud.com",
    "eu_west_1": "https://api.mypurecloud.ie",
    "ap_southeast_2": "https://api.mypurecloud.com.au",
    "ap_northeast_1": "https://api.mypurecloud.jp",
    "eu_central_1": "https://api.mypurecloud.de",
    "us_west_2": "https://api.usw2.pure.cloud",
    "ca_central_1": "https://api.cac1.pure.cloud",
    "ap_northeast_2": "https://api.apne2.pure.cloud",
    "eu_west_2": "https://api.euw2.pure.cloud",
    "ap_south_1": "https://api.aps1.pure.cloud",
    "us_east_2": "https://api.use2.us-gov-pure.cloud",
    "sa_east_1": "https://api.sae1.pure.cloud",
    "me_central_1": "https://api.mec1.pure.cloud",
    "ap_northeast_3": "https://api.apne3.pure.cloud",
    "eu_central_2": "https://api.euc2.pure.cloud",
    "mx_central_1": "https://api.mxc1.pure.cloud",
    "ap_southeast_1": "https://api.apse1.pure.cloud",
    "eusc_de_east_1": "https://api.edee1.eusc-pure.cloud",
}
RETRY_5XX = (502, 503, 504)
# 429: up to 10 retries (11 requests), as the official SDK's urllib3 policy does (genesys-cloud-api.md §5.3); each
# wait is capped by max_retry_after. It used to be 6 attempts: a 429 storm of 8 answers with Retry-After: 1 failed a
# run that the SDK (and the Terraform provider) would have carried through.
RETRIES_5XX = 3  # retries of a 502/503/504 for GET/PUT/DELETE, after 1, 2 and 4 s (never for POST)
TOKEN_MARGIN = 60  # seconds: a cached token this close to expiry is not reused


def resolve_api_url(region: str | None, api_url: str | None) -> str:
    """The API base URL: ``api_url`` when given (it wins over ``region``), else the region's host."""
    if api_url:
        parts = urlsplit(api_url.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise InputError("api_url", f"{api_url!r} is not an http(s) URL such as https://api.mypurecloud.ie")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise InputError("api_url", f"{api_url!r} must be the API base only (scheme, host and port), without a path"
                             " such as /api/v2")
        return f"{parts.scheme}://{parts.netloc}"
    if region:
        key = region.strip().lower().replace("-", "_")
        if key in REGIONS:
            return REGIONS[key]
        for url in REGIONS.values():  # also accept the domain, e.g. mypurecloud.ie or api.mypurecloud.ie
            host = url.split("//", 1)[1]
            if region.strip().lower() in (host, host[len("api."):]):
                return url
        raise InputError("region", f"unknown Genesys Cloud region {region!r}; use one of {', '.join(sorted(REGIONS))}"
                         " (or its domain, e.g. mypurecloud.ie), or set api_url")
    raise InputError("region", "no Genesys Cloud region or API URL given; set region (or the environment variable"
                     " GENESYS_CLOUD_REGION), or api_url")


def ca_context(ca_path: str | None) -> ssl.SSLContext:
    """A verifying TLS context, with ``ca_path`` as the CA bundle when given. A missing, unreadable or empty bundle is
    an InputError naming ca_path (raised before any request)."""
    if not ca_path:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_path)
    except FileNotFoundError:
        raise InputError("ca_path", f"{ca_path} does not exist; give the path of a PEM CA bundle on the host that runs"
                         " the task (the controller, for the genesys_* modules)") from None
    except IsADirectoryError:
        raise InputError("ca_path", f"{ca_path} is a directory; give the path of a PEM CA bundle file") from None
    except PermissionError:
        raise InputError("ca_path", f"{ca_path} cannot be read (permission denied)") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise InputError("ca_path", f"{ca_path} holds no usable PEM CA certificate ({reason})") from None


def check_credentials(client_id: str, client_secret: str) -> None:
    """§4.1: the credentials travel as HTTP Basic ``base64(client_id:client_secret)``, which the SDK encodes as ASCII.
    Refuse what cannot be sent, without showing the secret."""
    if not client_id.isascii() or not client_id.isprintable() or ":" in client_id:
        raise InputError("client_id", "must be printable ASCII without ':' (it is sent in an HTTP Basic header);"
                         " check for a pasted newline or a wrong value")
    if not client_secret.isascii() or not client_secret.isprintable():
        raise InputError("client_secret", "must be printable ASCII (it is sent in an HTTP Basic header); it contains"
                         " a control or non-ASCII character. The value is not shown")


def login_url(api_url: str) -> str:
    """§4.3: the SDK logs in at the API host with ``//api.`` replaced by ``//login.`` (same base otherwise)."""
    return re.sub(r"//(api)\.", "//login.", api_url)


# -- the SDK, imported lazily and isolated from ~/.genesyscloudpython ------------------------------------------
_SDK: dict[str, t.Any] = {}
_PKG = "PureCloudPlatformClientV2"


def _names(path: str) -> dict[str, str]:
    """``{ClassName: submodule}`` from a package ``__init__.py`` made of ``from .submodule import ClassName`` lines."""
    with open(path, encoding="utf-8") as fh:
        return {m.group(2): m.group(1) for m in re.finditer(r"^from \.(\w+) import (\w+)\s*$", fh.read(), re.M)}


def _lazy_package() -> t.Any:
    """Register the SDK package, ``.models`` and ``.apis`` as lazy modules: a model or API class is imported from
    its own file the first time it is used, exactly as the SDK's eager ``__init__`` would have bound it. The
    eager import loads 6,600 model files (2-4 s, genesys-cloud-api.md §4.4 context); this loads the few used.
    Raises if the SDK's layout is not the expected one, so that the caller falls back to the normal import."""
    import importlib  # pylint: disable=import-outside-toplevel
    import importlib.util  # pylint: disable=import-outside-toplevel
    import types  # pylint: disable=import-outside-toplevel

    spec = importlib.util.find_spec(_PKG)
    if spec is None or not spec.origin:
        raise ImportError(f"No module named {_PKG!r}")
    root = os.path.dirname(spec.origin)
    model_names = _names(os.path.join(root, "models", "__init__.py"))
    api_names = _names(os.path.join(root, "apis", "__init__.py"))
    if len(model_names) < 100 or "TelephonyProvidersEdgeApi" not in api_names:
        raise ImportError("unexpected SDK layout")

    def lazy(name: str, path: str, table: dict[str, str], extra: t.Callable[[str], t.Any] | None = None):
        mod = types.ModuleType(name)
        mod.__path__ = [path]  # type: ignore[attr-defined]
        mod.__file__ = os.path.join(path, "__init__.py")

        def attr(item: str) -> t.Any:
            if item in table:
                value = getattr(importlib.import_module(f"{name}.{table[item]}"), item)
            elif extra is not None:
                value = extra(item)
            else:
                raise AttributeError(f"module {name!r} has no attribute {item!r}")
            setattr(mod, item, value)
            return value

        mod.__getattr__ = attr  # type: ignore[attr-defined]
        sys.modules[name] = mod
        return mod

    def top(item: str) -> t.Any:
        singles = {"ApiClient": "api_client", "Configuration": "configuration", "YearMonth": "year_month",
                   "GatewayConfiguration": "gateway_configuration", "PureCloudRegionHosts": "purecloud_region_hosts",
                   "ApiNullValue": "api_null_value"}
        if item in singles:
            return getattr(importlib.import_module(f"{_PKG}.{singles[item]}"), item)
        if item in api_names:
            return getattr(apis, item)
        if item in model_names:
            return getattr(models, item)
        if item == "configuration":
            return getattr(pkg, "Configuration")()
        raise AttributeError(f"module {_PKG!r} has no attribute {item!r}")

    pkg = lazy(_PKG, root, {}, top)
    models = pkg.models = lazy(f"{_PKG}.models", os.path.join(root, "models"), model_names)
    apis = pkg.apis = lazy(f"{_PKG}.apis", os.path.join(root, "apis"), api_names)
    return pkg


def load_sdk() -> dict[str, t.Any]:
    """Load PureCloudPlatformClientV2 once, isolated from ``~/.genesyscloudpython``: its configuration singleton
    is created with HOME pointed at an empty directory (so no config file is read), then its live reload is
    switched off and its file watcher stopped. Returns ``{"sdk", "rest", "AbstractHttpClient"}``."""
    if _SDK:
        return _SDK
    saved = os.environ.get("HOME")
    empty_home = tempfile.mkdtemp(prefix="byoc-genesys-home-")
    os.environ["HOME"] = empty_home
    try:
        if _PKG in sys.modules:
            sdk = sys.modules[_PKG]
        else:
            try:
                sdk = _lazy_package()
            except Exception:  # pylint: disable=broad-exception-caught
                for name in [n for n in sys.modules if n == _PKG or n.startswith(_PKG + ".")]:
                    del sys.modules[name]
                sdk = importlib_import(_PKG)
        rest = importlib_import(f"{_PKG}.rest")
        abstract = importlib_import(f"{_PKG}.abstract_http_client")
        cfg = sdk.Configuration()  # the singleton reads ~/.genesyscloudpython/config: HOME is empty here
    except ImportError as exc:
        raise MissingDependency("PureCloudPlatformClientV2", "to talk to the Genesys Cloud API", str(exc)) from None
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved
    sdk.configuration = cfg  # as the SDK's own __init__ binds it
    cfg.live_reload_config = False
    observer = getattr(cfg, "_observer", None)
    if observer is not None:
        with contextlib.suppress(Exception):
            observer.unschedule_all()
            observer.stop()
    cfg.gateway_configuration = None
    shutil.rmtree(empty_home, ignore_errors=True)
    _SDK.update({"sdk": sdk, "rest": rest, "AbstractHttpClient": abstract.AbstractHttpClient})
    return _SDK


def importlib_import(name: str) -> t.Any:
    import importlib  # pylint: disable=import-outside-toplevel

    return importlib.import_module(name)


# -- token cache ----------------------------------------------------------------------------------------------
def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "byoc.certificates", "genesys")


class TokenCache:
    """One JSON file per (client id, login URL); 0600 in a 0700 directory. The entry also holds a salted
    PBKDF2 hash of the client secret, so a changed (or wrong) secret never reuses a token minted with another."""

    def __init__(self, directory: str, client_id: str, login: str, client_secret: str) -> None:
        self.dir = directory
        key = hashlib.sha256(f"{client_id}\n{login}".encode()).hexdigest()[:32]
        self.path = os.path.join(directory, f"token-{key}.json")
        self.lock_path = self.path + ".lock"
        self.client_id = client_id
        self.login = login
        self._secret = client_secret

    def _tag(self, salt: str) -> str:
        return hashlib.pbkdf2_hmac("sha256", self._secret.encode(), bytes.fromhex(salt), 10000).hex()

    def _ensure_dir(self) -> None:
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            st = os.stat(self.dir)
        except OSError as exc:
            raise InputError("token_cache_dir", f"cannot create the token cache directory {self.dir}: {exc}") from None
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise InputError("token_cache_dir", f"{self.dir} belongs to another user; use a private directory")
        if st.st_mode & 0o077:
            os.chmod(self.dir, 0o700)

    @contextlib.contextmanager
    def locked(self) -> t.Iterator[None]:
        self._ensure_dir()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if HAS_FCNTL:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if HAS_FCNTL:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def load(self) -> str | None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("client_id") != self.client_id or entry.get("login") != self.login:
            return None
        try:
            if not secrets.compare_digest(str(entry.get("secret_tag", "")), self._tag(str(entry.get("salt", "")))):
                return None
        except ValueError:
            return None
        if float(entry.get("expires_at", 0)) - TOKEN_MARGIN <= time.time():
            return None
        return entry.get("access_token") or None

    def store(self, token: str, expires_in: float | None) -> None:
        salt = secrets.token_hex(16)
        entry = {"client_id": self.client_id, "login": self.login, "salt": salt, "secret_tag": self._tag(salt),
                 "access_token": token, "expires_at": time.time() + float(expires_in or 0),
                 "minted": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entry, fh)
        os.replace(tmp, self.path)

    def discard(self, token: str) -> None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                current = json.load(fh).get("access_token")
        except (OSError, ValueError, AttributeError):
            return
        if current == token:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


# -- the client ----------------------------------------------------------------------------------------------
class VersionConflict(ApiError):
    """HTTP 409: the entity's version changed since it was read (§5.1/§5.2)."""


_CREDENTIAL_RE = re.compile(r"(?i)\b(bearer|basic)(\s+|%20|\+)[A-Za-z0-9._~+/=%-]{4,}")


def scrub(text: str, secrets_: t.Iterable[str | None] = ()) -> str:
    """``text`` without any credential: the given secret values, and anything that looks like an Authorization
    header's value (``Bearer ...``, ``Basic ...``). A server or a proxy may echo the request in its error answer;
    what we show of that answer must never carry the request's headers."""
    for value in sorted({v for v in secrets_ if v and len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, "********")
    return _CREDENTIAL_RE.sub(lambda m: f"{m.group(1)} ********", text)


def error_fields(body: t.Any) -> dict:
    """Fields of an ErrorBody (§5.1) or an OAuth error (§4.1) from a raw response body. An answer that is not JSON
    is not quoted (it may be a proxy's page echoing the request); only its size is given."""
    try:
        data = json.loads(body) if isinstance(body, (str, bytes)) and body else {}
    except ValueError:
        return {"message": f"an answer that is not JSON ({len(body)} bytes)"} if body else {}
    if not isinstance(data, dict):
        return {}
    out = {k: data.get(k) for k in ("message", "code", "contextId") if data.get(k)}
    if data.get("error"):
        out["code"] = data["error"]
        out["message"] = data.get("error_description") or data.get("description") or data["error"]
    fields = [d.get("fieldName") for d in data.get("details") or [] if isinstance(d, dict) and d.get("fieldName")]
    if fields:
        out["fields"] = fields
    return out


class GenesysClient:
    service = "Genesys Cloud API"

    def __init__(self, api_url: str, client_id: str, client_secret: str, *, validate_certs: bool = True,
                 ca_path: str | None = None, token_cache: bool = True, token_cache_dir: str | None = None,
                 max_retry_after: float = 60.0, max_attempts: int = 11, timeout: float = 30.0,
                 sleep: t.Callable[[float], None] = time.sleep) -> None:
        self.api_url = api_url.rstrip("/")
        self.login = login_url(self.api_url)
        self.client_id = client_id
        self._secret = client_secret
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.max_retry_after = float(max_retry_after)
        self.max_attempts = max(1, int(max_attempts))
        self.timeout = float(timeout)
        self.sleep = sleep
        self.cache = TokenCache(token_cache_dir or default_cache_dir(), client_id, self.login, client_secret) \
            if token_cache else None
        self.requests = 0
        self.tokens_minted = 0
        self.rate_limit_waits: list[float] = []
        self.last_request = ("", "")
        self._last_token_response: dict = {}
        self._api_client = None
        self._apis: dict[str, t.Any] = {}
        self._pool = None

    def scrub(self, text: str) -> str:
        """``text`` without the client secret, its Basic credential or any token this client holds or minted."""
        basic = base64.b64encode(f"{self.client_id}:{self._secret}".encode("utf-8", "replace")).decode("ascii")
        token = getattr(self._api_client, "access_token", None) if self._api_client is not None else None
        minted = self._last_token_response.get("access_token") if isinstance(self._last_token_response, dict) else None
        return scrub(str(text), (self._secret, basic, token, minted if isinstance(minted, str) else None))

    # -- transport (called by the SDK through _Transport) ---------------------------------------------------
    def _pool_manager(self):
        if self._pool is None:
            import urllib3  # pylint: disable=import-outside-toplevel

            if self.validate_certs:
                ctx = ca_context(self.ca_path)
            else:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._pool = urllib3.PoolManager(num_pools=2, maxsize=4, retries=False, ssl_context=ctx,
                                             cert_reqs=ssl.CERT_REQUIRED if self.validate_certs else ssl.CERT_NONE,
                                             timeout=urllib3.Timeout(total=self.timeout))
        return self._pool

    def send(self, opts: t.Any) -> t.Any:
        import urllib3  # pylint: disable=import-outside-toplevel

        rest = load_sdk()["rest"]
        method = opts.method.upper()
        url = opts.url
        if opts.query_params:
            url += "?" + urlencode(opts.query_params)
        headers = dict(opts.headers or {})
        if opts.post_params:
            data = urlencode(opts.post_params).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif opts.body is not None:
            data = json.dumps(opts.body).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            data = None
        where = f"{method} {url.split('?', 1)[0]}"
        self.last_request = (method, url.split("?", 1)[0])
        attempt = rate_limited = server_errors = 0
        while True:
            attempt += 1
            self.requests += 1
            try:
                raw = self._pool_manager().request(method, url, body=data, headers=headers, redirect=False)
            except urllib3.exceptions.SSLError as exc:
                raise ConnectionFailure(
                    f"TLS with the {self.service} failed on {where}: {self.scrub(str(exc))}. If the endpoint uses a"
                    " private CA, set ca_path to its CA bundle.", url=url.split("?", 1)[0]) from None
            except urllib3.exceptions.HTTPError as exc:
                raise ConnectionFailure(
                    f"Cannot reach the {self.service} on {where}: {self.scrub(str(exc))}. Check region/api_url and"
                    " that the controller can reach it (proxy, firewall).", url=url.split("?", 1)[0]) from None
            resp = rest.RESTResponse(raw)
            resp.data = raw.data.decode("utf-8", "replace")
            status = raw.status
            if status == 429:
                wait = self._retry_after(raw.headers, rate_limited + 1)
                said = self.scrub(error_fields(resp.data).get("message", "rate limit exceeded"))
                if wait > self.max_retry_after:
                    raise ApiError(
                        f"The {self.service} is rate limiting (HTTP 429) on {where} and asks to wait {wait:g}s,"
                        f" more than max_retry_after={self.max_retry_after:g}s: {said}. Run fewer tasks against this"
                        " org at once, retry later, or raise max_retry_after.", status=429, retry_after=wait)
                rate_limited += 1
                if rate_limited >= self.max_attempts:
                    raise ApiError(
                        f"The {self.service} kept answering HTTP 429 on {where} after {rate_limited} attempts"
                        f" (waited {sum(self.rate_limit_waits):g}s in total): {said}. Retry later or run fewer"
                        " tasks against this org at once.", status=429)
                self.rate_limit_waits.append(wait)
                self.sleep(wait)
                continue
            if status in RETRY_5XX and method != "POST" and server_errors < RETRIES_5XX:
                server_errors += 1
                self.sleep(min(2 ** (server_errors - 1), self.max_retry_after))
                continue
            if status not in range(200, 206):  # §1: the SDK treats 200..205 as success
                raise rest.ApiException(http_resp=resp)
            if url.endswith("/oauth/token"):
                with contextlib.suppress(ValueError, TypeError):
                    self._last_token_response = json.loads(resp.data)
            return resp

    def _retry_after(self, headers: t.Any, attempt: int) -> float:
        # §5.3: Retry-After (seconds); else inin-ratelimit-reset; else exponential back-off.
        for name in ("Retry-After", "inin-ratelimit-reset"):
            value = headers.get(name)
            if value is not None:
                try:
                    return max(0.0, float(value))
                except ValueError:
                    continue
        return float(min(2 ** (attempt - 1), 30))

    # -- authentication ------------------------------------------------------------------------------------
    def _client(self):
        if self._api_client is None:
            sdk_parts = load_sdk()
            sdk = sdk_parts["sdk"]
            owner = self

            class _Transport(sdk_parts["AbstractHttpClient"]):
                def request(self, http_request_options):
                    return owner.send(http_request_options)

            client = sdk.ApiClient(host=self.api_url)
            client.gateway_configuration = None  # never a gateway from a config file (§4.4)
            client.set_http_client(_Transport())
            self._api_client = client
            token = None
            if self.cache is not None:
                with self.cache.locked():
                    token = self.cache.load()
                    if token is None:
                        token = self._mint()
            else:
                token = self._mint()
            client.access_token = token
        return self._api_client

    def _mint(self, cache_locked: bool = True) -> str:
        rest = load_sdk()["rest"]
        client = self._api_client
        check_credentials(self.client_id, self._secret)
        try:
            client.get_client_credentials_token(self.client_id, self._secret)
        except (ValueError, KeyError, TypeError, IndexError):
            # A 2xx answer without a readable access_token (the SDK parses it itself). Its body is not quoted: it
            # could be anything, a token included.
            raise ApiError(f"The Genesys Cloud login at {self.login}/oauth/token answered without a readable"
                           " access_token. Check region/api_url: it must be the org's API host, not a proxy or"
                           " another service.") from None
        except rest.ApiException as exc:
            said = {k: self.scrub(v) if isinstance(v, str) else v for k, v in error_fields(exc.body).items()}
            if exc.status in (400, 401, 403):
                raise AuthenticationFailure(
                    f"Genesys Cloud refused the OAuth client credentials (HTTP {exc.status}"
                    f" {said.get('code', '')}: {said.get('message', exc.reason)}) at {self.login}/oauth/token for"
                    f" client_id {self.client_id}. Check client_id and client_secret (or GENESYS_CLOUD_CLIENT_ID /"
                    " GENESYS_CLOUD_CLIENT_SECRET), that the OAuth client uses the Client Credentials grant, and that"
                    " region/api_url is the org's region.", status=exc.status) from None
            raise self._api_error(exc, "authenticating") from None
        self.tokens_minted += 1
        token = client.access_token
        if self.cache is not None:
            self.cache.store(token, self._last_token_response.get("expires_in"))
        return token

    def _reauthenticate(self) -> None:
        """After a 401: drop the refused token, take a newer cached one if another process minted it, else mint."""
        client = self._client()
        refused = client.access_token
        if self.cache is None:
            client.access_token = self._mint()
            return
        with self.cache.locked():
            self.cache.discard(refused)
            token = self.cache.load()
            if token is None or token == refused:
                token = self._mint()
            client.access_token = token

    def connect(self) -> None:
        """Import the SDK and get a token now (both slow), e.g. before a wait's clock starts."""
        self._client()

    # -- calls --------------------------------------------------------------------------------------------
    def api(self, name: str):
        if name not in self._apis:
            self._apis[name] = getattr(load_sdk()["sdk"], name)(self._client())
        return self._apis[name]

    def call(self, api_name: str, method: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
        rest = load_sdk()["rest"]
        for attempt in (1, 2):
            fn = getattr(self.api(api_name), method)
            try:
                return fn(*args, **kwargs)
            except rest.ApiException as exc:
                if exc.status == 401 and attempt == 1:
                    self._reauthenticate()  # §4.3: the SDK does not re-authenticate client credentials
                    continue
                raise self._api_error(exc, method) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _api_error(self, exc: t.Any, what: str) -> Exception:
        method, url = self.last_request
        said = {k: self.scrub(v) if isinstance(v, str) else v for k, v in error_fields(exc.body).items()}
        headers = exc.headers or {}
        corr = headers.get("ININ-Correlation-Id") if hasattr(headers, "get") else None
        corr = self.scrub(str(corr or said.get("contextId") or "")) or None
        text = said.get("message") or self.scrub(str(exc.reason or "no message"))
        code = said.get("code")
        where = f"{method} {url}" if method else what
        suffix = f" (correlation id {corr})" if corr else ""
        details = {"status": exc.status, "url": url or None, "code": code, "correlation_id": corr,
                   "fields": said.get("fields")}
        head = f"The {self.service} answered HTTP {exc.status}{' ' + code if code else ''} on {where}: {text}{suffix}."
        if exc.status == 0:
            return ConnectionFailure(f"Cannot reach the {self.service} on {where}: {text}.", **details)
        if exc.status == 401:
            return AuthenticationFailure(head + " The token was refused even after authenticating again; check the"
                                         " OAuth client and its role.", **details)
        if exc.status == 403:
            return AuthenticationFailure(head + " Give the OAuth client's role the permission telephony:plugin:all"
                                         " (Telephony > Plugin > All).", **details)
        if exc.status == 404:
            return NotFound(head, **details)
        if exc.status == 409:
            return VersionConflict(head, **details)
        return ApiError(head, **details)

    def to_wire(self, model: t.Any) -> t.Any:
        """A model as wire JSON (camelCase, datetimes as ISO strings); §2.10: not ``to_dict()``."""
        return self._client().sanitize_for_serialization(model)

    def list_all(self, api_name: str, method: str, page_size: int = 100, **kwargs: t.Any) -> list:
        items: list = []
        page = 1
        while True:
            listing = self.call(api_name, method, page_size=page_size, page_number=page, **kwargs)
            items.extend(listing.entities or [])
            if not listing.page_count or page >= listing.page_count:
                return items
            page += 1

    def update_with_retry(self, read: t.Callable[[], t.Any], write: t.Callable[[t.Any], t.Any],
                          attempts: int = 4) -> t.Any:
        """§5.2: read the entity, write it with the version just read; on 409 read again and retry."""
        for attempt in range(1, attempts + 1):
            current = read()
            try:
                return write(current)
            except VersionConflict as exc:
                if attempt == attempts:
                    raise ApiError(f"{exc.msg} The entity kept changing under us ({attempts} attempts); something"
                                   " else is editing it. Retry later.", **exc.details) from None
                self.sleep(min(0.5 * attempt, self.max_retry_after))
        raise AssertionError("unreachable")  # pragma: no cover
