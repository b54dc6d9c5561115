"""digest.atomic: a file is written whole or not at all, and nothing is left beside it."""

from __future__ import annotations

from pathlib import Path

from digest import atomic


def test_a_write_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "new" / "feed.atom"
    assert atomic.write(target, b"first") and atomic.write(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["feed.atom"]


def test_without_replace_a_taken_name_is_left_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "ada.toml"
    target.write_text("# the operator's own\n")
    assert atomic.write(target, b"name = 'ada'\n", replace=False) is False
    assert target.read_text() == "# the operator's own\n" and [p.name for p in tmp_path.iterdir()] == ["ada.toml"]
    assert atomic.write(tmp_path / "ada-2.toml", b"x", replace=False) and (tmp_path / "ada-2.toml").read_bytes() == b"x"
