"""Lab part ``cloudflare``: the Cloudflare API v4 emulator (``tests/lab/emulators/cloudflare``) with the zones
``cf.test`` and ``deep.cf.test`` (for the longest-suffix zone match)."""

from __future__ import annotations

import json
import os
import secrets
import sys

from ..core import LOOPBACK, REPO, free_port, tcp_open

ZONE = "cf.test"
SUBZONE = "deep.cf.test"


class Cloudflare:
    name = "cloudflare"
    requires: tuple = ()

    def start(self, lab) -> dict:
        work = lab.workdir("cloudflare")
        port = free_port()
        token = secrets.token_urlsafe(30)
        zones = {ZONE: secrets.token_hex(16), SUBZONE: secrets.token_hex(16)}
        config_file = work / "cloudflare.json"
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"port": port, "token": token, "zones": zones}, fh)
        proc = lab.spawn("cloudflare", [sys.executable, "-m", "emulators.cloudflare", "--config", str(config_file)],
                         cwd=REPO / "tests" / "lab")
        lab.wait_ready("cloudflare", proc, lambda: tcp_open(port))
        base = f"http://{LOOPBACK}:{port}"
        return {
            "summary": f"Cloudflare API v4 emulator {base}/client/v4 (zones {ZONE}, {SUBZONE})",
            "api_url": f"{base}/client/v4",
            "api_token": token,
            "zone": ZONE,
            "zone_id": zones[ZONE],
            "zones": zones,
            "control_url": f"{base}/_control",
        }


def components() -> list:
    return [Cloudflare()]
