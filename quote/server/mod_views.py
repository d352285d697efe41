# SPDX-License-Identifier: Apache-2.0
"""What one caller sees of the registry: its own namespace's mods, then the shared ones.

Shared mods (registered with the admin key, or preloaded with ``--mod``) are visible to
every request. A user key's mods are visible to requests with that key only, and shadow a
shared mod of the same name for that key. The model worker loads a namespaced mod by its
wire name ``"<key id>/<name>"`` (:meth:`quote.mods.registry.ModRegistry.load`); a client
cannot name one that way (``/`` is not valid in a mod name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quote.mods.registry import ModRegistry, ModSpec
from quote.server.auth import Caller

__all__ = ["ModView"]


@dataclass(frozen=True)
class ModView:
    """The registry as seen by ``caller``."""

    registry: ModRegistry
    caller: Caller

    def own(self) -> ModRegistry | None:
        """The caller's namespace (None unless the caller presents a user key)."""
        if self.caller.kind != "user" or self.caller.owner is None:
            return None
        return self.registry.namespace(self.caller.owner)

    def writable(self) -> ModRegistry:
        """Where the caller's registrations and deletions go (admin: the shared registry)."""
        return self.own() or self.registry

    def find(self, name: str) -> tuple[str, ModSpec] | None:
        """``(wire name, spec)`` of the mod the caller means by ``name``, or None."""
        own = self.own()
        if own is not None and (spec := own.spec(name)) is not None:
            return f"{self.caller.owner}/{name}", spec
        spec = self.registry.spec(name)
        return (name, spec) if spec is not None else None

    def public(self, spec: ModSpec, wire: str) -> dict[str, Any]:
        """The JSON form of a found mod (namespaced ones carry their ``owner``)."""
        data = spec.public()
        if "/" in wire:
            data["owner"] = wire.partition("/")[0]
        return data

    def list(self) -> list[dict[str, Any]]:
        """Every mod the caller sees, by name (its own first where names clash)."""
        own = self.own()
        mine = {s.name: s for s in own.list()} if own is not None else {}
        out = [self.public(s, f"{self.caller.owner}/{s.name}") for s in mine.values()]
        out += [s.public() for s in self.registry.list() if s.name not in mine]
        return sorted(out, key=lambda d: str(d["name"]))
