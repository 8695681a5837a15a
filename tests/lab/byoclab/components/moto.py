"""Lab part ``moto``: moto's server mode as a local Route 53 endpoint, with the hosted zone ``r53.test``.

Facts: toolchain.md §2.4 and acme-and-dns.md §7.7 (``moto_server -H 127.0.0.1 -p PORT``, boto3 with
endpoint_url and the ``testing`` credentials, changes are INSYNC immediately).
"""

from __future__ import annotations

import shutil
import sys
import time
import urllib.request
from pathlib import Path

from ..core import LOOPBACK, LabError, free_port

ZONE = "r53.test"
REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


def _moto_server() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if not found:
        raise LabError("moto: moto_server not found beside the venv's python; run `make setup`")
    return found


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url + "/moto-api/", timeout=2) as resp:
        return resp.status == 200


class Moto:
    name = "moto"
    requires: tuple = ()

    def start(self, lab) -> dict:
        try:
            import boto3
        except ImportError as exc:
            raise LabError(f"moto: boto3 is not importable ({exc}); run `make setup`") from None
        port = free_port()
        url = f"http://{LOOPBACK}:{port}"
        proc = lab.spawn("moto", [_moto_server(), "-H", LOOPBACK, "-p", str(port)])
        lab.wait_ready("moto", proc, lambda: _answers(url), timeout=30)

        client = boto3.client("route53", endpoint_url=url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY)
        resp = client.create_hosted_zone(Name=ZONE, CallerReference=f"byoc-lab-{time.time_ns()}")
        zone_id = resp["HostedZone"]["Id"].rsplit("/", 1)[-1]
        return {
            "summary": f"moto Route 53 at {url} (hosted zone {ZONE} = {zone_id})",
            "endpoint_url": url,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "region": REGION,
            "zone": ZONE,
            "hosted_zone_id": zone_id,
        }


def components() -> list:
    return [Moto()]
