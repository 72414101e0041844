"""Technique registry: built-in kinds plus third-party ones from the ``archsearch.techniques``
entry-point group. Classes are imported on first use so loading a spec stays cheap."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .techniques.base import Technique

BUILTIN = {
    "generate": "archsearch.techniques.generate:Generate",
    "critique": "archsearch.techniques.critique:Critique",
    "rank": "archsearch.techniques.rank:Rank",
    "fuse": "archsearch.techniques.fuse:Fuse",
    "verify": "archsearch.techniques.verify:Verify",
    "test": "archsearch.techniques.unit_test:UnitTest",
    "vote": "archsearch.techniques.vote:Vote",
}
ENTRY_POINT_GROUP = "archsearch.techniques"


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_kinds() -> list[str]:
    return sorted({**_plugins(), **BUILTIN})


def technique_class(kind: str) -> type[Technique] | None:
    target = BUILTIN.get(kind) or _plugins().get(kind)
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
