# SPDX-License-Identifier: Apache-2.0
"""Run mods written for the original engine: its ``@mod`` forms and bare ``(event, tokenizer)`` mods.

- ``@mod`` on ``handler(event, actions, tokenizer)`` or ``handler(event, actions)``
  returns a Quote :class:`~quote.sdk.mod.ModDefinition`; the engine, the loader and
  the offline harness run it like any Quote mod. Calling it directly the
  original's way, ``definition(event, tokenizer)``, still returns the action.
- A bare ``mod(event, tokenizer) -> action`` callable (the original engine's
  ``ModCallable``) is wrapped by :func:`adapt_callable`.

Before each call the adapter turns the engine's event into its original-style
view (:mod:`quote.sdk.compat.events`) and hands the original's
:class:`~quote.sdk.compat.builder.ActionBuilder`; what the mod returns becomes
one of Quote's actions (``None`` is ``Noop``). Each adapted mod logs and warns
(:class:`QuoteModSDKDeprecationWarning`) once, when it is adapted, never per call.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

from quote.sdk import actions as q
from quote.sdk.compat.actions import to_quote_action
from quote.sdk.compat.builder import ActionBuilder, quote_event_type
from quote.sdk.compat.events import legacy_event
from quote.sdk.errors import InvalidActionError
from quote.sdk.events import EVENT_NAMES, Event
from quote.sdk.mod import DEFAULT_HOLD_BACK, Mod, ModDefinition, positional_arity

__all__ = [
    "LegacyModDefinition",
    "ModCallable",
    "QuoteModSDKDeprecationWarning",
    "adapt_callable",
    "create_mod",
    "mod",
    "validate_action",
]

logger = logging.getLogger(__name__)

ModCallable = Callable[[Any, Any], Any]
"""The original engine's mod: ``mod(event, tokenizer) -> action``."""


class QuoteModSDKDeprecationWarning(DeprecationWarning):
    """A mod uses the original engine's SDK (``quote_mod_sdk``) through the compatibility layer."""


def _warn_once(name: str, form: str) -> None:
    message = (
        f"mod {name!r} uses the original engine's SDK ({form}) through Quote's compatibility "
        "layer; port it to quote.sdk (see docs/guides/migrating.md)"
    )
    logger.warning("%s", message)
    warnings.warn(message, QuoteModSDKDeprecationWarning, stacklevel=4)


def validate_action(event: Any, action: Any) -> Any:
    """``action`` (``Noop`` for ``None``) if it is legal at ``event``.

    Raises:
        InvalidActionError: not an action, or not legal for this event.
    """
    result = q.Noop() if action is None else action
    kind = quote_event_type(type(event))
    quote_action = to_quote_action(result)
    if kind not in q.LEGAL_EVENTS[type(quote_action)]:
        raise InvalidActionError(
            f"{type(quote_action).__name__} is not legal at {EVENT_NAMES[kind]}"
        )
    return result


class _LegacyMod(Mod):
    """One request's instance of an original-style mod."""

    def __init__(self, call: Callable[[Any, Any], Any]) -> None:
        self._call = call

    def handle(self, event: Event, actions: Any, tokenizer: Any) -> q.Action | None:
        return to_quote_action(self._call(legacy_event(event), tokenizer))


def _builder_call(handler: Callable[..., Any], arity: int) -> Callable[[Any, Any], Any]:
    """``call(event, tokenizer)`` that hands ``handler`` the original's builder."""
    if arity == 2:
        return lambda event, tokenizer: handler(event, ActionBuilder(event))
    return lambda event, tokenizer: handler(event, ActionBuilder(event), tokenizer)


class LegacyModDefinition(ModDefinition):
    """A Quote mod definition that is also callable the original's way, ``(event, tokenizer)``."""

    def __init__(self, name: str, call: Callable[[Any, Any], Any], hold_back: int) -> None:
        super().__init__(name, functools.partial(_LegacyMod, call), hold_back)
        self._legacy_call = call

    def __call__(self, event: Any, *args: Any) -> Any:
        """``(event, tokenizer)``: the original's action; ``(event, actions, tokenizer)``: Quote's."""
        if len(args) == 1:
            result = self._legacy_call(legacy_event(event), args[0])
            return validate_action(event, result)
        if len(args) == 2:
            return to_quote_action(self._legacy_call(legacy_event(event), args[1]))
        raise TypeError("call a mod as mod(event, tokenizer) or mod(event, actions, tokenizer)")


def _decorate(handler: Callable[..., Any], hold_back: int, form: str) -> LegacyModDefinition:
    arity = positional_arity(handler)
    if arity is not None and arity not in (2, 3):
        raise TypeError(
            f"mod handler {getattr(handler, '__name__', handler)!r} must take "
            f"(event, actions, tokenizer) or (event, actions), it takes {arity} parameter(s)"
        )
    name = str(getattr(handler, "__name__", "mod"))
    definition = LegacyModDefinition(name, _builder_call(handler, arity or 3), hold_back)
    functools.update_wrapper(definition, handler)  # type: ignore[arg-type]
    _warn_once(name, form)
    return definition


def mod(handler: Callable[..., Any] | None = None, *, hold_back: int = DEFAULT_HOLD_BACK) -> Any:
    """The original's ``@mod``: ``handler(event, actions, tokenizer)`` or ``handler(event, actions)``.

    Returns a :class:`LegacyModDefinition` (a Quote mod). Unlike the original,
    a ``TypeError`` raised inside the handler is not retried with two arguments:
    the arity is read from the signature once.
    """
    if handler is None:
        return lambda f: _decorate(f, hold_back, "@quote_mod_sdk.mod")
    return _decorate(handler, hold_back, "@quote_mod_sdk.mod")


def create_mod(handler: Callable[..., Any]) -> LegacyModDefinition:
    """The original's ``create_mod``: like :func:`mod` for ``handler(event, actions, tokenizer)``."""
    return _decorate(handler, DEFAULT_HOLD_BACK, "quote_mod_sdk.create_mod")


def adapt_callable(fn: ModCallable, name: str | None = None) -> ModDefinition:
    """Wrap the original engine's bare mod, ``fn(event, tokenizer) -> action``, as a Quote mod.

    ``fn`` itself stays callable the original's way; the definition is a plain
    :class:`~quote.sdk.mod.ModDefinition`, the only class the registry accepts.
    """
    label = str(name or getattr(fn, "__name__", "mod"))
    definition = ModDefinition(label, functools.partial(_LegacyMod, fn), DEFAULT_HOLD_BACK)
    functools.update_wrapper(definition, fn)  # type: ignore[arg-type]
    definition.name = label
    _warn_once(label, "a bare (event, tokenizer) mod")
    return definition
