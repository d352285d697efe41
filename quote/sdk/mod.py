# SPDX-License-Identifier: Apache-2.0
"""Authoring mods: the ``@mod`` decorator and the class-based :class:`Mod`.

A mod is instantiated **once per request** (:meth:`ModDefinition.instantiate`),
so per-request state lives on the instance and is freed with the request.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from quote.sdk.actions import Action
from quote.sdk.builder import ActionBuilder
from quote.sdk.context import RequestInfo
from quote.sdk.events import Event

__all__ = ["DEFAULT_HOLD_BACK", "Handler", "Mod", "ModDefinition", "as_definition", "mod"]

DEFAULT_HOLD_BACK = 16
"""Default number of generated tokens a streaming request withholds from the client.

A mod may backtrack at most this many tokens on a streaming request: older
tokens may already have been delivered and can never be retracted.
"""


class Handler(Protocol):
    """Signature of a function mod: ``handler(event, actions, tokenizer) -> action | None``."""

    def __call__(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None: ...


class Mod:
    """Base class for class-based mods; the engine creates one instance per request.

    Override :meth:`handle`; optionally :meth:`on_start` / :meth:`on_end`.
    Class attributes: ``name`` (defaults to the class name) and ``hold_back``.
    """

    name: ClassVar[str | None] = None
    hold_back: ClassVar[int] = DEFAULT_HOLD_BACK

    def on_start(self, request: RequestInfo) -> None:
        """Called once when the request starts, before ``Prefilled``."""

    def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
        """Answer one event with an action (``None`` means ``Noop``)."""
        raise NotImplementedError(f"{type(self).__name__}.handle is not implemented")

    def on_end(self, request: RequestInfo) -> None:
        """Called once when the request ends, however it ends."""


class _FunctionMod(Mod):
    def __init__(self, fn: Handler) -> None:
        self._fn = fn

    def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
        return self._fn(event, actions, tokenizer)


class ModDefinition:
    """A named, registrable mod: makes one fresh :class:`Mod` instance per request.

    Calling the definition directly calls the handler (handy in unit tests).
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], Mod],
        hold_back: int = DEFAULT_HOLD_BACK,
        handler: Handler | None = None,
    ) -> None:
        if hold_back < 0:
            raise ValueError("hold_back must be >= 0")
        self.name = name
        self.factory = factory
        self.hold_back = int(hold_back)
        self._handler = handler

    def instantiate(self) -> Mod:
        """A fresh per-request instance."""
        return self.factory()

    def __call__(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
        if self._handler is not None:
            return self._handler(event, actions, tokenizer)
        return self.instantiate().handle(event, actions, tokenizer)

    def __repr__(self) -> str:
        return f"ModDefinition(name={self.name!r}, hold_back={self.hold_back})"


def mod(
    fn: Handler | None = None, *, name: str | None = None, hold_back: int = DEFAULT_HOLD_BACK
) -> Any:
    """Turn ``handler(event, actions, tokenizer)`` into a :class:`ModDefinition`.

    Usable bare (``@mod``) or with options (``@mod(name="x", hold_back=4)``).
    The handler is called exactly once per event; its exceptions propagate
    (the engine fails only that request).
    """

    def wrap(f: Handler) -> ModDefinition:
        params = inspect.signature(f).parameters
        if len(params) != 3:
            raise TypeError(
                f"mod handler {getattr(f, '__name__', f)!r} must take (event, actions, tokenizer), "
                f"it takes {len(params)} parameter(s)"
            )
        definition = ModDefinition(
            str(name or getattr(f, "__name__", "mod")),
            functools.partial(_FunctionMod, f),
            hold_back,
            handler=f,
        )
        functools.update_wrapper(definition, f)  # type: ignore[arg-type]
        return definition

    return wrap(fn) if fn is not None else wrap


def positional_arity(fn: Any) -> int | None:
    """How many positional arguments ``fn`` takes (``None``: any number, or no signature)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def as_definition(obj: Any, name: str | None = None) -> ModDefinition:
    """Accept a ``ModDefinition``, a ``Mod`` subclass or a plain handler function.

    A function of exactly two positional parameters is the original engine's bare
    mod, ``mod(event, tokenizer) -> action``: it runs through the compatibility
    layer (:func:`quote.sdk.compat.mod.adapt_callable`).
    """
    if isinstance(obj, ModDefinition):
        if type(obj) is not ModDefinition or (name and name != obj.name):
            # Loaders get the exact class (a subclass, e.g. the compatibility layer's, keeps
            # only its factory): the registry's import check accepts nothing else.
            return ModDefinition(name or obj.name, obj.factory, obj.hold_back, obj._handler)
        return obj
    if isinstance(obj, type) and issubclass(obj, Mod):
        return ModDefinition(name or obj.name or obj.__name__, obj, obj.hold_back)
    if callable(obj):
        if positional_arity(obj) == 2:
            # The original engine's bare mod, ``mod(event, tokenizer) -> action``.
            from quote.sdk.compat.mod import adapt_callable

            return adapt_callable(obj, name)
        result: ModDefinition = mod(obj, name=name)
        return result
    raise TypeError(f"not a mod: {obj!r} (expected @mod function, Mod subclass or handler)")
