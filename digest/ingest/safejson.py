"""JSON that cannot hurt what comes after it: depth, number size and text checked before anything is kept.

Pure. ``loads`` is ``json.loads`` with three refusals, each a ``ParseError`` of one
line that names the source and the place:

* nesting deeper than ``MAX_DEPTH`` (Python's decoder would raise RecursionError);
* a whole number outside SQLite's 64-bit integer range, or one too long to be a
  count (Python refuses to convert past 4,300 digits with a ValueError);
* a lone surrogate escape (``"\\ud800"``), which no UTF-8 writer, database or
  mail can carry.

``NaN`` and ``Infinity`` are refused too: they are not JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from digest.errors import ParseError

MAX_DEPTH = 24  # a daily_papers item nests 4 deep; this leaves room for fields Hugging Face may add
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # SQLite's INTEGER
_MAX_INT_DIGITS = 20  # 2**63 has 19 digits; anything longer is refused before Python converts it
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


def loads(text: str, *, source: str) -> Any:
    """Decode ``text`` as JSON, refusing what would break a later step (see the module's docstring)."""
    _check_depth(text, source=source)
    try:
        found = json.loads(text, parse_int=_integer(source), parse_constant=_constant(source))
    except json.JSONDecodeError as e:
        raise ParseError(f"{source}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    _check_text(found, source=source, at="")
    return found


def _check_depth(text: str, *, source: str) -> None:
    """Refuse nesting past ``MAX_DEPTH`` without recursing: strings out, then the innermost pairs peeled off."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    for _ in range(MAX_DEPTH):
        peeled = _INNERMOST.sub("", brackets)
        if peeled == brackets:
            return  # nothing left to peel: within the depth (or unbalanced, which the decoder reports)
        brackets = peeled
    if _INNERMOST.search(brackets):
        raise ParseError(f"{source}: JSON nested more than {MAX_DEPTH} levels deep; expected a flat list of papers")


def _integer(source: str) -> Any:
    def parse(digits: str) -> int:
        if len(digits.lstrip("-")) > _MAX_INT_DIGITS or not INT_MIN <= (value := int(digits)) <= INT_MAX:
            shown = digits if len(digits) <= 24 else f"{digits[:12]}…({len(digits)} digits)"
            raise ParseError(f"{source}: the number {shown} is too large (at most {INT_MAX:,}); the file is damaged")
        return value

    return parse


def _constant(source: str) -> Any:
    def parse(name: str) -> float:
        raise ParseError(f"{source}: {name} is not a JSON value; the file is damaged")

    return parse


def _check_text(value: object, *, source: str, at: str) -> None:
    """Refuse a lone surrogate in any string or key (depth is already bounded, so recursion is safe)."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            where = at or "a string"
            raise ParseError(f"{source}: {where}: a lone surrogate escape (\\ud800-\\udfff); the file is damaged")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _check_text(item, source=source, at=f"{at}[{n}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, source=source, at=f"{at} key")
            _check_text(item, source=source, at=f"{at}.{key}" if at else str(key))
