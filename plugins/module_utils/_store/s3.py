# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""S3 backend (boto3): ``s3://<bucket>/<prefix><group>/state.json`` and ``.../lock.json``.

A ``PutObject`` replaces an object as a whole: a reader gets the old or the new document, and an upload cut off
half-way stores nothing. The lock is created with a conditional write (``If-None-Match: *``) and replaced only
if it is unchanged (``If-Match: <ETag>``), S3's compare-and-swap. The document is written the same way: the
writer reads the object, compares its revision with the one it expects, and puts the new document with
``If-Match`` on the ETag it compared (``If-None-Match: *`` for a new group), so a concurrent write in between
makes the put fail (412/409) instead of being overwritten. Objects are written with server-side
encryption requested (``AES256``); private keys inside are encrypted by us anyway.
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError, AuthenticationFailure, ConnectionFailure, InputError, MissingDependency, NotFound,
)
from ansible_collections.byoc.certificates.plugins.module_utils._store.base import (
    LOCK, STATE, Store, check_group, decode, encode, revision_of, stale,
)

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised by the sanity import test
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = str(_exc)


class S3Store(Store):
    def __init__(self, options: dict[str, t.Any]) -> None:
        if not HAS_BOTO3:
            raise MissingDependency("boto3", "for the s3 store backend", BOTO3_IMPORT_ERROR)
        self.bucket = options.get("bucket")
        if not self.bucket:
            raise InputError("s3.bucket", "the s3 store needs a bucket name")
        prefix = options.get("prefix") or ""
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.endpoint = options.get("endpoint_url")
        self.location = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        verify: t.Any = options.get("validate_certs", True)
        if verify and options.get("ca_path"):
            verify = options["ca_path"]
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint or None,
            region_name=options.get("region") or None,
            aws_access_key_id=options.get("access_key") or None,
            aws_secret_access_key=options.get("secret_key") or None,
            aws_session_token=options.get("session_token") or None,
            verify=verify,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=30),
        )

    def _key(self, group: str, name: str) -> str:
        return f"{self.prefix}{check_group(group)}/{name}"

    def _fail(self, exc: Exception, action: str, key: str) -> Exception:
        where = f"s3://{self.bucket}/{key}" + (f" at {self.endpoint}" if self.endpoint else "")
        if isinstance(exc, EndpointConnectionError):
            return ConnectionFailure(f"Could not reach S3 to {action} {where}: {exc}. Check s3.endpoint_url and the"
                                     " network.", location=where)
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken") or status == 403:
                return AuthenticationFailure(f"S3 refused to {action} {where} ({code}). Check s3.access_key,"
                                             " s3.secret_key (or the AWS_* environment) and the bucket policy.",
                                             location=where, code=code)
            if code == "NoSuchBucket":
                return NotFound(f"The bucket {self.bucket} does not exist ({action} {where}). Create it or fix"
                                " s3.bucket.", location=where, code=code)
            return ApiError(f"S3 failed to {action} {where}: {code} {exc}", location=where, code=code, status=status)
        return ConnectionFailure(f"S3 failed to {action} {where}: {exc}", location=where)

    def _get(self, key: str) -> tuple[bytes, str] | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
            return resp["Body"].read(), resp.get("ETag", "")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._fail(exc, "read", key) from None
        except BotoCoreError as exc:
            raise self._fail(exc, "read", key) from None

    def _put(self, key: str, data: bytes, action: str, **cond: str) -> bool:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json",
                                   ServerSideEncryption="AES256", **cond)
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if cond and (code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)):
                return False
            raise self._fail(exc, action, key) from None
        except BotoCoreError as exc:
            raise self._fail(exc, action, key) from None

    def read(self, group: str) -> dict | None:
        key = self._key(group, STATE)
        got = self._get(key)
        return None if got is None else decode(got[0], f"s3://{self.bucket}/{key}")

    def write(self, group: str, doc: dict, expected_revision: int) -> None:
        key = self._key(group, STATE)
        got = self._get(key)
        current = None if got is None else decode(got[0], f"s3://{self.bucket}/{key}")
        if revision_of(current) != expected_revision:
            raise stale(group, self.where(group), expected_revision, current)
        cond = {"IfNoneMatch": "*"} if got is None else {"IfMatch": got[1]}
        if not self._put(key, encode(doc), "write", **cond):
            now = self._get(key)
            raise stale(group, self.where(group), expected_revision,
                        None if now is None else decode(now[0], f"s3://{self.bucket}/{key}"))

    def read_lock(self, group: str) -> dict | None:
        got = self._get(self._key(group, LOCK))
        if got is None:
            return None
        try:
            lock = json.loads(got[0].decode("utf-8"))
        except ValueError:
            lock = {"owner": None, "expires": ""}
        lock["_etag"] = got[1]
        return lock

    def _create_lock(self, group: str, lock: dict) -> bool:
        return self._put(self._key(group, LOCK), json.dumps(lock).encode("utf-8"), "create the lock", IfNoneMatch="*")

    def _replace_lock(self, group: str, old: dict, lock: dict) -> bool:
        return self._put(self._key(group, LOCK), json.dumps(lock).encode("utf-8"), "replace the lock",
                         IfMatch=old.get("_etag", ""))

    def _delete_lock(self, group: str) -> None:
        key = self._key(group, LOCK)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, "delete the lock", key) from None
