"""Bring the local lab up or down.

    python tests/lab/lab.py up   [--dir DIR] [PART ...]   start the parts (default: all) on free loopback ports; write DIR/lab.json
    lab.py up --fleet N [--fleet-valid] [--dir DIR]   bind, pebble, genesys and N certificate groups (components/fleet.py;
                                         expired certificates at start unless --fleet-valid); inventory in DIR/fleet/inventory
    lab.py up --lag-secondary SECONDS [...]  also with --fleet: BIND's secondary serves lab.test (and the corp.test
                                         zones) SECONDS late, and Pebble validates DNS-01 there (components/bind.py)
    lab.py down [--dir DIR]              stop every process recorded in DIR/lab.json, by PID
    lab.py show [--dir DIR]              print DIR/lab.json

DIR defaults to $BYOC_LAB_DIR or .lab in the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from byoclab.components import select  # noqa: E402
from byoclab.core import REPO, Lab, LabError  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "show"])
    parser.add_argument("parts", nargs="*", help="lab parts to start (default: all)")
    parser.add_argument("--dir", default=os.environ.get("BYOC_LAB_DIR", str(REPO / ".lab")))
    parser.add_argument("--fleet", type=int, metavar="N", help="the fleet lab: N certificate groups")
    parser.add_argument("--fleet-valid", action="store_true", help="fleet devices start with valid certificates")
    parser.add_argument("--expired", action="store_true",
                        help="the SBCs' SIP-TLS endpoints start with expired certificates (make demo)")
    parser.add_argument("--lag-secondary", type=float, metavar="SECONDS",
                        help="a secondary that lags SECONDS behind the primary for lab.test; ACME validates there")
    args = parser.parse_intermixed_args(argv)
    directory = Path(args.dir)

    if args.command == "up":
        if (directory / "lab.json").exists():
            old = Lab.load(directory)
            if old.down():
                print(f"lab: stopped a previous lab in {directory}")
        started = time.monotonic()
        lab = Lab(directory, expired_sip=args.expired)
        try:
            if args.fleet:
                from byoclab.components.fleet import fleet_parts
                parts = fleet_parts(args.fleet, expired=not args.fleet_valid, extra=args.parts, lag=args.lag_secondary)
            else:
                parts = select(args.parts)
            if args.lag_secondary is not None:
                if args.lag_secondary < 0:
                    raise LabError("--lag-secondary must be 0 or more seconds")
                binds = [p for p in parts if p.name == "bind"]
                if not binds:
                    raise LabError("--lag-secondary needs the bind part")
                binds[0].lag = args.lag_secondary
            desc = lab.up(parts)
        except LabError as exc:
            print(f"lab: failed to start: {exc}", file=sys.stderr)
            return 1
        for name, comp in desc["components"].items():
            print(f"lab: {name:<22} {comp.get('summary', '')}")
        print(f"lab: up in {time.monotonic() - started:.1f}s; description in {lab.json_file}")
        return 0
    if args.command == "down":
        if not (directory / "lab.json").exists():
            print(f"lab: nothing to stop in {directory}")
            return 0
        stopped = Lab.load(directory).down()
        print(f"lab: stopped {len(stopped)} process(es)" + (": " + ", ".join(stopped) if stopped else ""))
        return 0
    print(json.dumps(json.loads((directory / "lab.json").read_text()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
