"""Lab part ``azure``: the Azure DNS emulator (``tests/lab/emulators/azure``): Microsoft Entra ID client-credential
and managed-identity tokens, and Azure Resource Manager DNS zones with TXT record sets (etags, 412, 429), on HTTPS
with a certificate from the lab CA. Zones: ``az.test`` in the resource group ``rg-dns`` and ``deep.az.test`` in
``rg-deep`` (for the longest-suffix zone match across resource groups). The ``dnsbridge`` part serves ``az.test``
over real DNS so that Pebble (``pebble-dns``) can validate DNS-01 against it."""

from __future__ import annotations

import json
import os
import secrets
import ssl
import sys
import urllib.request
import uuid

from ..core import LOOPBACK, REPO, free_port

ZONE = "az.test"
SUBZONE = "deep.az.test"
RESOURCE_GROUP = "rg-dns"
SUB_RESOURCE_GROUP = "rg-deep"


class Azure:
    name = "azure"
    requires: tuple = ()

    def start(self, lab) -> dict:
        work = lab.workdir("azure")
        port = free_port()
        cert_file, key_file = lab.ca.issue("azure", [LOOPBACK, "localhost"])
        base = f"https://{LOOPBACK}:{port}"
        config = {
            "port": port, "cert_file": str(cert_file), "key_file": str(key_file),
            "tenant_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4()),
            "client_secret": "azs~" + secrets.token_urlsafe(30), "subscription_id": str(uuid.uuid4()),
            "resource_groups": {RESOURCE_GROUP: [ZONE], SUB_RESOURCE_GROUP: [SUBZONE]},
            "managed_identity": True, "resource": base, "page_size": 100,
        }
        config_file = work / "azure.json"
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        proc = lab.spawn("azure", [sys.executable, "-m", "emulators.azure", "--config", str(config_file)],
                         cwd=REPO / "tests" / "lab")
        ctx = ssl.create_default_context(cafile=str(lab.ca.cert_file))

        def ready() -> bool:
            with urllib.request.urlopen(f"{base}/_control/state", context=ctx, timeout=2) as resp:
                return resp.status == 200

        lab.wait_ready("azure", proc, ready)
        return {
            "summary": f"Azure DNS emulator {base} (Entra ID tokens, ARM record sets; zones {ZONE} in"
                       f" {RESOURCE_GROUP}, {SUBZONE} in {SUB_RESOURCE_GROUP})",
            "resource_manager_url": base,
            "authority_url": base,
            "managed_identity_url": f"{base}/metadata/identity/oauth2/token",
            "tenant_id": config["tenant_id"],
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
            "subscription_id": config["subscription_id"],
            "resource_group": RESOURCE_GROUP,
            "zone": ZONE,
            "zones": {ZONE: RESOURCE_GROUP, SUBZONE: SUB_RESOURCE_GROUP},
            "ca_file": str(lab.ca.cert_file),
            "control_url": f"{base}/_control",
        }


def components() -> list:
    return [Azure()]
