"""Store leases on the s3 backend (issue 12 item 5), against the lab's moto server: the same lease code as the
filesystem backend (tests/unit/plugins/module_utils/test_lease.py), over S3's conditional writes (If-None-Match: *
to create, If-Match on the ETag to replace and to release). Observed independently: the lock object read with
boto3."""

from __future__ import annotations

import datetime
import json
import threading
import uuid

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._store import lease as L
from ansible_collections.byoc.certificates.plugins.module_utils._store.base import LockHeld
from ansible_collections.byoc.certificates.plugins.module_utils._store.s3 import S3Store

T0 = datetime.datetime(2026, 11, 30, 8, 0, 0, tzinfo=datetime.timezone.utc)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


@pytest.fixture
def s3(lab):
    import boto3

    moto = lab.part("moto")
    bucket = "lease-" + uuid.uuid4().hex[:10]
    client = boto3.client("s3", endpoint_url=moto["endpoint_url"], region_name=moto["region"],
                          aws_access_key_id=moto["access_key"], aws_secret_access_key=moto["secret_key"])
    client.create_bucket(Bucket=bucket)
    options = {"bucket": bucket, "prefix": "certs/", "endpoint_url": moto["endpoint_url"],
               "access_key": moto["access_key"], "secret_key": moto["secret_key"], "region": moto["region"]}

    def owner(group: str):
        try:
            body = client.get_object(Bucket=bucket, Key=f"certs/{group}/lock.json")["Body"].read()
        except client.exceptions.NoSuchKey:
            return "absent"
        return json.loads(body).get("owner")

    return options, owner


def test_acquire_renew_release_and_expiry_on_s3(s3):
    options, owner = s3
    store = S3Store(options)
    L.acquire(store, "grp-a", "slice-1", 60, now=at(0))
    assert owner("grp-a") == "slice-1"
    with pytest.raises(LockHeld) as err:
        L.acquire(store, "grp-a", "slice-2", 60, now=at(30))
    assert "slice-1" in err.value.msg and "2026-11-30T08:01:00Z" in err.value.msg
    assert L.renew(store, "grp-a", "slice-1", 60, now=at(50))["expires"] == "2026-11-30T08:01:50Z"
    # not renewed again: it expires, slice-2 takes it over; slice-1's late release leaves it alone
    L.acquire(store, "grp-a", "slice-2", 60, now=at(111))
    assert owner("grp-a") == "slice-2"
    assert L.release(store, "grp-a", "slice-1", now=at(112))[0] is False
    with pytest.raises(L.LeaseLost):
        L.renew(store, "grp-a", "slice-1", 60, now=at(112))
    assert owner("grp-a") == "slice-2"
    # released: a released record (an expired lock), free for the next holder at once
    assert L.release(store, "grp-a", "slice-2", now=at(113))[0] is True
    assert owner("grp-a") is None and L.read(store, "grp-a")["released_by"] == "slice-2"
    assert L.acquire(store, "grp-a", "slice-3", 60, now=at(114))[0]["holder"] == "slice-3"


def test_threads_racing_for_one_s3_lease_exactly_one_wins(s3):
    options, owner = s3
    start = threading.Barrier(8)
    winners: list[str] = []
    errors: list[BaseException] = []

    def race(i: int) -> None:
        store = S3Store(options)  # one client per thread, as separate runs have
        start.wait()
        try:
            L.acquire(store, "grp-b", f"t{i}", 60)
            winners.append(f"t{i}")
        except LockHeld:
            pass
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(winners) == 1, (winners, errors)
    assert owner("grp-b") == winners[0]
