"""The preferences form's own check: each problem is plain words about one field, never the profile's syntax."""

from __future__ import annotations

import pytest

from digest import profiles
from digest.web import form

GOOD = {"keywords": "pruning = 2\nquantization", "exclude": "survey", "send_at": "07:30", "timezone": "Europe/Berlin"}


def test_good_fields_have_no_problems() -> None:
    assert form.problems(GOOD | {"frequency": "weekly", "day": "friday"}) == {}


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("keywords", "pruning = 300", "The weight for “pruning” must be more than 0 and at most 100."),
        ("keywords", "pruning = 0", "The weight for “pruning” must be more than 0 and at most 100."),
        ("keywords", "pruning = lots", "The weight for “pruning” must be a number, like 2."),
        ("keywords", "Pruning\npruning", "“pruning” is listed twice; keep one."),
        ("keywords", "---", "Each keyword needs letters or digits."),
        ("keywords", "", "Add at least one keyword, so there is something to rank papers by."),
        ("keywords", "x" * 101, f"“{'x' * 40}…” is longer than 100 characters; use a shorter term or phrase."),
        ("send_at", "7pm", "Write the time as hours and minutes in 24-hour time, like 07:30."),
        ("timezone", "CET-ish", "Choose a time zone by its place name, like Europe/Berlin or America/New_York."),
        ("frequency", "hourly", "Choose how often from the list."),
    ],
)
def test_each_problem_is_one_plain_sentence_on_its_field(field: str, value: str, said: str) -> None:
    assert form.problems(GOOD | {field: value}) == {field: [said]}


def test_every_bad_keyword_is_listed_and_seeds_may_stand_alone() -> None:
    found = form.problems(GOOD | {"keywords": "a = -1\nb = 101\nc"})
    assert len(found["keywords"]) == 2
    assert form.problems(GOOD | {"keywords": ""}, has_seeds=True) == {}


def test_what_the_form_lets_through_the_profile_accepts() -> None:
    # The two checks hold the same rules: a form that passes here saves.
    lines = ["a = 100", "b = 0.001", *(f"t{i}" for i in range(198))]
    assert form.problems(GOOD | {"keywords": "\n".join(lines)}) == {}
    pairs = (line.partition("=") for line in lines)
    table = "\n".join(f'"{term.strip()}" = {weight.strip() or 1}' for term, _, weight in pairs)
    profile = profiles.parse(f"email = 'a@example.org'\n[keywords]\n{table}\n", source="t", default_name="t")
    assert len(profile.keywords) == 200
