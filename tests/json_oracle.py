# SPDX-License-Identifier: Apache-2.0
"""An oracle for JSON outputs that is not Quote's: ``jsonschema`` with format checks on.

``jsonschema.FormatChecker`` checks ``date``, ``email``, ``ipv4``, ``ipv6`` and ``uuid`` by
itself. Its ``date-time`` and modern ``time`` checks need an optional package (without it,
``time`` falls back to draft 3's ``HH:MM:SS``), so strict RFC 3339 checks of both are
added here (``T``/``Z`` in either case, as RFC 3339 allows). Remote ``$ref`` retrieval is
never attempted (schemas here have none).
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import jsonschema

__all__ = ["FORMATS", "check_json"]

_TIME = r"(\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))"
_DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt]" + _TIME)


def _time_ok(m: re.Match[str], first: int) -> bool:
    h, mi, s = (int(m.group(first + i)) for i in range(3))
    oh, om = m.group(first + 5), m.group(first + 6)
    offset_ok = oh is None or (int(oh) < 24 and int(om) < 60)
    return h < 24 and mi < 60 and s < 61 and offset_ok


def _time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = re.fullmatch(_TIME, value)
    return m is not None and _time_ok(m, 1)


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = _DATE_TIME.fullmatch(value)
    if m is None:
        return False
    try:
        datetime.date.fromisoformat(m.group(1))
    except ValueError:
        return False
    return _time_ok(m, 2)


FORMATS = jsonschema.FormatChecker()
FORMATS.checks("date-time")(_date_time)
FORMATS.checks("time")(_time)


def check_json(text: str, schema: Any) -> Any:
    """Parse ``text`` and validate it against ``schema`` (formats checked); return the value."""
    value = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls(schema, format_checker=FORMATS).validate(value)
    return value
