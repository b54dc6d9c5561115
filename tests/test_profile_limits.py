"""A profile a stranger wrote costs only itself: one line, the last good version in force, nothing printed raw."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import profiles
from digest.errors import ProfileError

from .conftest import Result

CLI = Callable[..., Result]

HEAD = 'name = "ada"\nemail = "ada@example.org"\n'
KEYWORDS = "[keywords]\nquantization = 1\n"
BAD = {
    "nested 5,000 deep": (HEAD + "seeds = " + "[" * 5000 + "]" * 5000 + "\n" + KEYWORDS, "nested too deeply"),
    "a NaN weight": (HEAD + "[keywords]\nquantization = nan\n", "key 'keywords.\"quantization\"': not a finite number"),
    "an infinite weight": (
        HEAD + "[keywords]\nquantization = inf\n",
        "'keywords.\"quantization\"': not a finite number",
    ),
    "a 300 KB file": (HEAD + "# " + "x" * 300_000 + "\n" + KEYWORDS, "over the 256 KB a profile may have"),
    "an address SMTP cannot carry": (
        'name = "ada"\nemail = "ada(x@example.org"\n' + KEYWORDS,
        "key 'email': The email address contains invalid characters before the @-sign",
    ),
    "a non-ASCII local part": (
        'name = "ada"\nemail = "ü@example.org"\n' + KEYWORDS,
        "key 'email': the part before the @ is not plain ASCII, which this server's mail cannot carry",
    ),
    "a number of 5,000 digits": (HEAD + "max_items = " + "9" * 5000 + "\n" + KEYWORDS, "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_hostile_profile_is_one_line_and_the_last_good_version_stays(cli: CLI, folder: Path, case: str) -> None:
    assert cli("subscribers").code == 0
    text, said = BAD[case]
    (folder / "ada.toml").write_text(text, encoding="utf-8")
    listed = cli("subscribers", "--json")
    assert listed.code == 1 and "Traceback" not in listed.err
    [line] = [line for line in listed.err.splitlines() if "ada.toml" in line]
    assert said in line and line.endswith("(the last good version stays in force)")
    ada = next(json.loads(row) for row in listed.out.splitlines() if '"ada"' in row)
    assert ada["status"] == "active" and "quantization" in ada["keywords"]
    checked = cli("check", folder / "ada.toml")
    assert checked.code == 1 and said in checked.err and "Traceback" not in checked.err
    sent = cli("send")  # the others still go out
    assert "Traceback" not in sent.err and "sent " in sent.out


def test_escape_sequences_in_a_profile_are_shown_escaped_on_the_terminal(cli: CLI, folder: Path) -> None:
    (folder / "eve.toml").write_text(
        'name = "eve"\n[keywords]\n"evil\\u001b[2J\\u001b]0;pwned\\u0007" = 1\nquantization = 1\n', encoding="utf-8"
    )
    listed = cli("subscribers")
    assert "\x1b" not in listed.out + listed.err and "\x07" not in listed.out + listed.err
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07" in listed.out
    (folder / "eve.toml").write_text('name = "eve"\ntimezone = "\\u001b[31mred"\n[keywords]\nx = 1\n')
    broken = cli("check", folder / "eve.toml")
    assert "\x1b" not in broken.err and "\\x1b[31mred" in broken.err


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=300)
    | st.lists(st.sampled_from(["[", "]", "{", "}", "=", '"', "a", "1", "nan", "\n", "."])).map("".join)
)
def test_profile_fuzz_is_a_profile_or_one_profile_error(text: str) -> None:
    lines: list[str] = []
    try:
        profiles.parse(text, source="fuzz.toml", default_name="fuzz")
    except ProfileError as e:
        lines = e.lines
    assert all(line.startswith("fuzz.toml: ") for line in lines)
