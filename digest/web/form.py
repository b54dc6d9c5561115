"""The preferences form's fields, checked in the reader's words: each problem belongs to one field.

Pure. ``problems`` holds the same rules as ``profiles.parse`` for what the
form can change, said as a reader would understand them: no file names, no
TOML keys, no admin commands. A value it lets through and ``profiles.parse``
still refuses gets ``SAVE_FAILED``, and the detail goes to the operator's log.
"""

from __future__ import annotations

from digest.models import FREQUENCIES, WEEKDAYS
from digest.profile_checks import CLOCK, MAX_EXCLUDE, MAX_KEYWORDS, MAX_TERM_LENGTH, MAX_WEIGHT, term_key, zones

SAVE_FAILED = "These settings could not be saved. Please check them and try again."


def problems(fields: dict[str, str], *, has_seeds: bool = False) -> dict[str, list[str]]:
    """What is wrong with each field the reader filled in, field name to plain sentences (empty when all is well)."""
    found = {
        "keywords": _keywords(fields.get("keywords", ""), has_seeds=has_seeds),
        "exclude": _exclude(fields.get("exclude", "")),
        "send_at": _send_at(fields.get("send_at", "")),
        "timezone": _timezone(fields.get("timezone", "")),
        "frequency": _choice(fields.get("frequency", ""), FREQUENCIES, "how often"),
        "day": _choice(fields.get("day", ""), WEEKDAYS, "a day"),
    }
    return {field: sentences for field, sentences in found.items() if sentences}


def _quoted(term: str) -> str:
    return f"“{term[:40]}…”" if len(term) > 40 else f"“{term}”"


def _keywords(text: str, *, has_seeds: bool) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines and not has_seeds:
        return ["Add at least one keyword, so there is something to rank papers by."]
    if len(lines) > MAX_KEYWORDS:
        return [f"You have {len(lines)} keywords; keep the {MAX_KEYWORDS} that matter most."]
    found: list[str] = []
    seen: set[str] = set()
    for line in lines:
        term, has_weight, weight = line.partition("=")
        term = " ".join(term.strip().strip('"').split())
        found += _term(term, weight.strip() if has_weight else None, seen)
    return found


def _term(term: str, weight: str | None, seen: set[str]) -> list[str]:
    if not any(ch.isalnum() for ch in term):
        return ["Each keyword needs letters or digits."]
    if len(term) > MAX_TERM_LENGTH:
        return [f"{_quoted(term)} is longer than {MAX_TERM_LENGTH} characters; use a shorter term or phrase."]
    if term_key(term) in seen:
        return [f"{_quoted(term)} is listed twice; keep one."]
    seen.add(term_key(term))
    if weight is None:
        return []
    try:
        number = float(weight)
    except ValueError:
        return [f"The weight for {_quoted(term)} must be a number, like 2."]
    if not 0 < number <= MAX_WEIGHT:
        return [f"The weight for {_quoted(term)} must be more than 0 and at most {MAX_WEIGHT:g}."]
    return []


def _exclude(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_EXCLUDE:
        return [f"You have {len(lines)} terms to leave out; keep at most {MAX_EXCLUDE}."]
    return [f"{_quoted(t)} is longer than {MAX_TERM_LENGTH} characters." for t in lines if len(t) > MAX_TERM_LENGTH]


def _send_at(text: str) -> list[str]:
    if not text.strip() or CLOCK.match(text.strip()):
        return []
    return ["Write the time as hours and minutes in 24-hour time, like 07:30."]


def _timezone(text: str) -> list[str]:
    if not text.strip() or text.strip() in zones():
        return []
    return ["Choose a time zone by its place name, like Europe/Berlin or America/New_York."]


def _choice(value: str, options: tuple[str, ...], what: str) -> list[str]:
    if not value.strip() or value.strip() in options:
        return []
    return [f"Choose {what} from the list."]
