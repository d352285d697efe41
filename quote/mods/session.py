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
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from quote.mods.budget import ModTimeout, arm, budget_seconds, disarm, time_budget
from quote.sdk.actions import LEGAL_EVENTS, TERMINAL_ACTIONS, Action, Noop
from quote.sdk.builder import ActionBuilder
from quote.sdk.context import RequestInfo, bind_request, current_request
from quote.sdk.errors import QuoteSDKError
from quote.sdk.events import EVENT_NAMES, Event
from quote.sdk.mod import Mod, ModDefinition

__all__ = ["ModFailure", "ModSession", "Dispatched"]

logger = logging.getLogger(__name__)

_ACTION_TYPES = tuple(LEGAL_EVENTS)


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
                except Exception as exc:  # a mod's own bug: fail only this request
                    raise ModFailure(d.name, "start", _describe(exc)) from exc
            self.instances.append((d.name, inst))

    @property
    def hold_back(self) -> int:
        """Tokens a streaming request withholds: the largest ``hold_back`` of its mods."""
        return max((d.hold_back for d in self.definitions), default=0)

    def dispatch(
        self, event: Event, edit: Callable[[Event, Action, str], Event] | None = None
    ) -> list[Dispatched]:
        """Send ``event`` to each mod in order; return the non-Noop actions.

        ``edit(event, action, mod_name)`` lets the engine apply an action before the next mod
        sees the event (e.g. chained logits edits); it returns the event to pass on.
        """
        out: list[Dispatched] = []
        ev_name = EVENT_NAMES[type(event)]
        for name, inst in self.instances:
            action = self._call(name, inst, event, ev_name)
            if isinstance(action, Noop):
                continue
            if self.on_action is not None:
                self.on_action(name, event, action)
            out.append(Dispatched(name, action))
            if isinstance(action, TERMINAL_ACTIONS):
                break
            if edit is not None:
                event = edit(event, action, name)
        return out

    def _call(self, name: str, inst: Mod, event: Event, ev_name: str) -> Action:
        # Hot path (several calls per request per step): no context managers.
        token = current_request.set(self.info)
        armed = arm(self.budget_s)
        try:
            result = inst.handle(event, ActionBuilder(event), self.tokenizer)
        except ModTimeout as exc:
            raise ModFailure(
                name, ev_name, f"exceeded its time budget of {self.budget_s * 1000:.0f} ms per call"
            ) from exc
        except QuoteSDKError as exc:
            raise ModFailure(name, ev_name, str(exc)) from exc
        except Exception as exc:  # a mod's own bug: fail only this request
            raise ModFailure(name, ev_name, _describe(exc)) from exc
        finally:
            if armed:
                disarm()
            current_request.reset(token)
        if result is None:
            return Noop()
        if not isinstance(result, _ACTION_TYPES):
            raise ModFailure(
                name, ev_name, f"returned {type(result).__name__} {result!r:.80}, not an action"
            )
        if type(event) not in LEGAL_EVENTS[type(result)]:
            raise ModFailure(
                name, ev_name, f"action {type(result).__name__} is not legal at {ev_name}"
            )
        return result

    def close(self) -> None:
        """Call every mod's ``on_end`` (errors are logged, never raised) and drop instances."""
        for name, inst in self.instances:
            with bind_request(self.info):
                try:
                    inst.on_end(self.info)
                except Exception as exc:  # noqa: BLE001 - on_end of user code must not break cleanup
                    logger.warning("mod %s: on_end raised %s", name, _describe(exc))
        self.instances.clear()


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
