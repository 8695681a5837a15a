"""Registry of lab parts. Each module listed in ``PARTS`` has a ``components()`` function returning component
instances (see ``byoclab.core`` for the component contract)."""

from __future__ import annotations

import importlib

# In the order the README describes them.
PARTS = [
    "bind",
    "powerdns",
    "moto",
    "pebble",
    "acme2certifier",
    "cloudflare",
    "azure",
    "resolver",
    "genesys",
    "audiocodes",
    "ribbon_core",
    "ribbon_edge",
]


def all_components() -> list:
    comps: list = []
    for part in PARTS:
        try:
            mod = importlib.import_module(f"{__name__}.{part}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{part}":
                continue  # that part is not built yet
            raise
        comps.extend(mod.components())
    return comps


def select(names: list[str] | None) -> list:
    """The named parts plus everything they require; all parts when ``names`` is empty."""
    comps = all_components()
    if not names:
        return comps
    by_name = {c.name: c for c in comps}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown lab part(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
    chosen: list = []

    def add(name):
        comp = by_name[name]
        for dep in comp.requires:
            add(dep)
        if comp not in chosen:
            chosen.append(comp)

    for n in names:
        add(n)
    return chosen
