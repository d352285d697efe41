# SPDX-License-Identifier: Apache-2.0
"""Any exception a mod raises (SystemExit and KeyboardInterrupt included) fails only its request.

Through ``ModSession`` (the engine's dispatch), the registry's loader and the offline
harness; ``ModTimeout`` keeps its own message. No MAX, no server.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quote.mods.budget import ModTimeout
from quote.mods.registry import RegistryError, load_from_dir
from quote.mods.session import ModFailure, ModSession
from quote.sdk import ForceTokens, ForwardPass, Mod, RequestInfo, as_definition, mod
from quote.sdk.testing import char_tokenizer, run_mod

pytestmark = pytest.mark.unit


class Unprintable(Exception):
    def __str__(self) -> str:
        raise SystemExit(1)


class Custom(BaseException):
    pass


def _raising(make: Callable[[], BaseException]) -> Callable[[], None]:
    def fail() -> None:
        raise make()

    return fail


def _sys_exit() -> None:
    sys.exit()


KINDS: dict[str, tuple[Callable[[], None], str]] = {
    "ValueError": (_raising(lambda: ValueError("boom")), "ValueError: boom"),
    "SystemExit(0)": (_raising(lambda: SystemExit(0)), "SystemExit: 0"),
    "sys.exit()": (_sys_exit, "SystemExit"),
    "KeyboardInterrupt": (_raising(KeyboardInterrupt), "KeyboardInterrupt"),
    "GeneratorExit": (_raising(GeneratorExit), "GeneratorExit"),
    "StopIteration": (_raising(StopIteration), "StopIteration"),
    "BaseException subclass": (_raising(lambda: Custom("x")), "Custom: x"),
    "unprintable": (_raising(Unprintable), "Unprintable: <unprintable>"),
}
WHERE = ["instantiate", "on_start", "handle"]


def _hostile(kind: str, where: str) -> Any:
    fail, _ = KINDS[kind]

    class Hostile(Mod):
        name = "hostile"

        def __init__(self) -> None:
            if where == "instantiate":
                fail()

        def on_start(self, request: RequestInfo) -> None:
            if where == "on_start":
                fail()

        def handle(self, event: Any, actions: Any, tokenizer: Any) -> None:
            if where == "handle":
                fail()

        def on_end(self, request: RequestInfo) -> None:
            if where == "on_end":
                fail()

    return Hostile


def _event(i: int = 0) -> ForwardPass:
    return ForwardPass("r", i, np.zeros(4, dtype=np.float32))


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_session_turns_any_exception_into_mod_failure(kind: str, where: str) -> None:
    session = ModSession(RequestInfo("r"), None, [_as_def(_hostile(kind, where))], budget_s=1.0)
    with pytest.raises(ModFailure) as e:
        session.start()
        session.dispatch(_event())
    message = str(e.value)
    assert "mod 'hostile' failed at" in message and KINDS[kind][1] in message, message
    assert e.value.event == ("start" if where != "handle" else "ForwardPass")
    session.close()
    # The next request is unaffected and the budget is disarmed.
    ok = ModSession(RequestInfo("r2"), None, [_as_def(_hostile(kind, "nowhere"))], budget_s=0.2)
    ok.start()
    assert ok.dispatch(_event()) == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_on_end_failures_are_logged_never_raised(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    session = ModSession(RequestInfo("r"), None, [_as_def(_hostile(kind, "on_end"))], budget_s=1.0)
    session.start()
    with caplog.at_level(logging.WARNING, logger="quote.mods.session"):
        session.close()
    assert "mod hostile: on_end raised" in caplog.text and KINDS[kind][1] in caplog.text
    assert session.instances == []


def test_on_end_is_budgeted(caplog: pytest.LogCaptureFixture) -> None:
    class Loops(Mod):
        def handle(self, event: Any, actions: Any, tokenizer: Any) -> None:
            return None

        def on_end(self, request: RequestInfo) -> None:
            while True:
                pass

    session = ModSession(RequestInfo("r"), None, [_as_def(Loops)], budget_s=0.2)
    session.start()
    with caplog.at_level(logging.WARNING, logger="quote.mods.session"):
        session.close()
    assert "on_end exceeded its time budget" in caplog.text


def test_timeout_keeps_its_message_and_exit_in_its_handler_is_caught() -> None:
    @mod
    def swallow_then_exit(event: Any, actions: Any, tokenizer: Any) -> None:
        try:
            while True:
                pass
        except ModTimeout:
            raise SystemExit(0) from None

    @mod
    def spins(event: Any, actions: Any, tokenizer: Any) -> None:
        while True:
            pass

    session = ModSession(RequestInfo("r"), None, [spins], budget_s=0.2)
    session.start()
    with pytest.raises(ModFailure, match="exceeded its time budget of 200 ms"):
        session.dispatch(_event())
    session = ModSession(RequestInfo("r"), None, [swallow_then_exit], budget_s=0.2)
    session.start()
    with pytest.raises(ModFailure, match="'swallow_then_exit' failed at ForwardPass: SystemExit"):
        session.dispatch(_event())


def test_action_subclass_is_not_an_action() -> None:
    class Sneaky(ForceTokens):
        pass

    @mod
    def sneaky(event: Any, actions: Any, tokenizer: Any) -> Any:
        return Sneaky((1,))

    session = ModSession(RequestInfo("r"), None, [sneaky], budget_s=1.0)
    session.start()
    with pytest.raises(ModFailure, match="returned Sneaky .*not an action"):
        session.dispatch(_event())


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("raise SystemExit(0)\n", "SystemExit: 0"),
        ("import sys\nsys.exit(0)\n", "SystemExit: 0"),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
        ("raise GeneratorExit\n", "GeneratorExit"),
        ("def __getattr__(name):\n    raise SystemExit(2)\n", "SystemExit: 2"),
    ],
)
def test_loader_turns_import_exits_into_registry_error(
    tmp_path: Path, source: str, needle: str
) -> None:
    (tmp_path / "main.py").write_text(source)
    with pytest.raises(RegistryError, match="mod 'bad'") as e:
        load_from_dir(tmp_path, "main:m", f"unit_{abs(hash(source))}", "bad")
    assert needle in str(e.value)
    assert not [
        k for k in sys.modules if k.startswith(f"quote_user_mods.m_unit_{abs(hash(source))}")
    ]


@pytest.mark.parametrize("where", [*WHERE, "on_end"])
@pytest.mark.parametrize("kind", ["SystemExit(0)", "KeyboardInterrupt", "GeneratorExit"])
def test_offline_harness_reports_exits_as_errors(kind: str, where: str) -> None:
    tok = char_tokenizer("ab")
    result = run_mod(_hostile(kind, where), tok, prompt="a", max_tokens=2)
    if where == "on_end":
        assert result.error is None  # logged, as in the engine
    else:
        assert result.finish_reason == "error" and "'hostile'" in (result.error or "")
        assert kind.split("(")[0] in (result.error or "")


def _as_def(cls: type[Mod]) -> Any:
    return as_definition(cls)
