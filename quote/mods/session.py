# SPDX-License-Identifier: Apache-2.0
"""``ModSession``: one request's mod instances, and validated dispatch of events to them.

Rules (documented in docs/guides/contract.md):

* mods run in the order the request lists them;
* each mod sees the event as edited by the mods before it (logits edits chain);
* once a mod returns a terminal action (ForceOutput / ToolCalls / EmitError), later
  mods are not called for that event: the first terminal action wins;
* a mod that raises, returns something that is not an action, or returns an action
  that is illegal for the event fails the request with :class:`ModFailure`, whose
  message names the mod, the event and the action.

"Raises" means any ``BaseException``: ``SystemExit``, ``KeyboardInterrupt``,
``GeneratorExit`` and the like from a mod fail only its request; they never end the
model worker. :class:`~quote.mods.budget.ModTimeout` (also a ``BaseException``, raised
by ``SIGALRM`` anywhere between arming and disarming a call) is caught first and keeps
its own message. What cannot be caught (``os._exit``, signals, native crashes) is in
SECURITY.md.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from threading import get_ident
from typing import Any, cast

from quote.mods.budget import ModTimeout, _Watchdog, budget_seconds, time_budget, watchdog
from quote.sdk.actions import LEGAL_EVENTS, TERMINAL_ACTIONS, Action, Noop
from quote.sdk.builder import ActionBuilder
from quote.sdk.context import RequestInfo, bind_request, current_request
from quote.sdk.errors import QuoteSDKError
from quote.sdk.events import EVENT_NAMES, Event
from quote.sdk.mod import Mod, ModDefinition, _FunctionMod

__all__ = ["Dispatched", "ModFailure", "ModSession", "describe_exception"]

logger = logging.getLogger(__name__)

_BUILDERS = {kind: ActionBuilder.for_event_type(kind) for kind in EVENT_NAMES}


class ModFailure(RuntimeError):
    """A mod failed its request; ``str()`` names the mod, the event and what went wrong."""

    def __init__(self, mod: str, event: str, detail: str) -> None:
        super().__init__(f"mod '{mod}' failed at {event}: {detail}")
        self.mod = mod
        self.event = event
        self.detail = detail


@dataclass(frozen=True)
class Dispatched:
    """One non-Noop action and the mod that returned it."""

    mod: str
    action: Action


@dataclass
class ModSession:
    """The mods of one request, instantiated for it and closed with it."""

    info: RequestInfo
    tokenizer: Any
    definitions: Sequence[ModDefinition]
    instances: list[tuple[str, Mod]] = field(default_factory=list)
    on_action: Callable[[str, Event, Action], None] | None = None
    budget_s: float = field(default_factory=budget_seconds)
    _hold_back: int | None = field(default=None, init=False, repr=False)
    _dog: _Watchdog | None = field(default=None, init=False, repr=False)
    _dog_thread: int | None = field(default=None, init=False, repr=False)
    _bound: list[tuple[str, Callable[..., Any]]] = field(
        default_factory=list, init=False, repr=False
    )

    def start(self) -> None:
        """Instantiate every mod and call its ``on_start`` (failures raise ``ModFailure``)."""
        for d in self.definitions:
            with bind_request(self.info):
                try:
                    with time_budget(self.budget_s):
                        inst = d.instantiate()
                        inst.on_start(self.info)
                except ModTimeout as exc:
                    raise ModFailure(d.name, "start", "exceeded its time budget") from exc
                except BaseException as exc:  # noqa: BLE001 - SystemExit & co. from a mod fail only its request
                    raise ModFailure(d.name, "start", describe_exception(exc)) from exc
            self.instances.append((d.name, inst))
            # A function mod's handler is called directly (one call layer less per event).
            handle = inst._fn if type(inst) is _FunctionMod else inst.handle
            self._bound.append((d.name, handle))

    @property
    def hold_back(self) -> int:
        """Tokens a streaming request withholds: the largest ``hold_back`` of its mods."""
        if self._hold_back is None:
            self._hold_back = max((d.hold_back for d in self.definitions), default=0)
        return self._hold_back

    def dispatch(
        self, event: Event, edit: Callable[[Event, Action, str], Event] | None = None
    ) -> list[Dispatched]:
        """Send ``event`` to each mod in order; return the non-Noop actions.

        ``edit(event, action, mod_name)`` lets the engine apply an action before the next mod
        sees the event (e.g. chained logits edits); it returns the event to pass on.
        """
        # Hot path (several calls per request per step): one context-variable binding per
        # event, the watchdog looked up once per thread, a shared builder, no allocation when
        # mods answer Noop.
        out: list[Dispatched] = []
        builder = _BUILDERS[type(event)]
        tokenizer = self.tokenizer
        if self._dog_thread != get_ident():  # the watchdog works on the main thread only
            self._dog, self._dog_thread = watchdog(self.budget_s), get_ident()
        dog = self._dog
        if dog is not None:
            dog.budget = self.budget_s
        token = current_request.set(self.info)
        name = "?"
        try:
            for name, handle in self._bound:
                if dog is not None:
                    dog.calls += 1
                    dog.busy = True
                try:
                    result = handle(event, builder, tokenizer)
                except QuoteSDKError as exc:
                    raise ModFailure(name, EVENT_NAMES[type(event)], _text(exc)) from exc
                except ModTimeout:
                    raise  # handled below, with the budget in the message
                except BaseException as exc:  # noqa: BLE001 - SystemExit & co. from a mod fail only its request
                    detail = describe_exception(exc)
                    raise ModFailure(name, EVENT_NAMES[type(event)], detail) from exc
                finally:
                    if dog is not None:
                        dog.busy = False
                if result is None or type(result) is Noop:
                    continue
                action = _validated(name, event, result)
                if self.on_action is not None:
                    self.on_action(name, event, action)
                out.append(Dispatched(name, action))
                if isinstance(action, TERMINAL_ACTIONS):
                    break
                if edit is not None:
                    event = edit(event, action, name)
        except ModTimeout as exc:  # anywhere from arming to disarming: the call overran
            raise ModFailure(
                name,
                EVENT_NAMES[type(event)],
                f"exceeded its time budget of {self.budget_s * 1000:.0f} ms per call",
            ) from exc
        finally:
            current_request.reset(token)
        return out

    def close(self) -> None:
        """Call every mod's ``on_end`` within the budget (failures are logged, never raised)."""
        for name, inst in self.instances:
            with bind_request(self.info):
                try:
                    with time_budget(self.budget_s):
                        inst.on_end(self.info)
                except ModTimeout:
                    logger.warning("mod %s: on_end exceeded its time budget", name)
                except BaseException as exc:  # noqa: BLE001 - on_end of user code must not break cleanup
                    logger.warning("mod %s: on_end raised %s", name, describe_exception(exc))
        self.instances.clear()
        self._bound.clear()


def _validated(name: str, event: Event, result: Any) -> Action:
    """``result`` as an action legal at ``event``, or :class:`ModFailure`."""
    if type(result) not in LEGAL_EVENTS:  # exact types: a subclass could override anything
        raise ModFailure(
            name,
            EVENT_NAMES[type(event)],
            f"returned {type(result).__name__} {_text(result, repr)[:80]}, not an action",
        )
    if type(event) not in LEGAL_EVENTS[type(result)]:
        raise ModFailure(
            name,
            EVENT_NAMES[type(event)],
            f"action {type(result).__name__} is not legal at {EVENT_NAMES[type(event)]}",
        )
    return cast(Action, result)


def describe_exception(exc: BaseException) -> str:
    """``"Type: message (file.py:line)"`` for an exception raised by mod code.

    Safe on hostile exceptions: a ``__str__`` that raises gives ``<unprintable>``.
    """
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename[:1] != "<"]
        where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    except Exception:  # noqa: BLE001 - a location is a nicety; never fail describing a failure
        where = ""
    kind = type(exc).__name__
    text = _text(exc)
    return f"{kind}: {text}{where}" if text else f"{kind}{where}"


def _text(obj: object, convert: Callable[[object], str] = str) -> str:
    """``convert(obj)`` of a mod's object; ``<unprintable>`` if that raises anything."""
    try:
        return convert(obj)
    except ModTimeout:
        raise  # a __str__ that loops is interrupted while the call is still budgeted
    except BaseException:  # noqa: BLE001 - a mod's __str__/__repr__ must not escape
        return "<unprintable>"
