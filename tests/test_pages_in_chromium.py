"""The reader's pages in a real browser: headless Chromium at phone and desktop width, a form and no script.

Chromium (Debian's ``chromium``) is started by the test on pages a real uvicorn serves on 127.0.0.1.
Skipped when it is not installed, except in CI (``CI=true``), which installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from digest import links

from .test_serve import token, world_with_links
from .webkit import web_server

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTHS = {"phone": 390, "desktop": 1200}
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]  # fmt: skip

if BROWSER is None and os.environ.get("CI") != "true":
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


def _chromium(*args: str) -> str:
    assert BROWSER is not None, "CI installs chromium; it is missing"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [BROWSER, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _screenshot(url: str, width: int, out: Path) -> Image.Image:
    _chromium(f"--window-size={width},2000", f"--screenshot={out}", url)
    return Image.open(out).convert("RGB")


@pytest.mark.parametrize("page", ["onboard", "preferences"])
def test_a_reader_s_page_is_a_plain_form_that_fits_phone_and_desktop_width(tmp_path: Path, page: str) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    purpose = {"onboard": links.ONBOARD, "preferences": links.PREFERENCES}[page]
    with web_server(world.settings, clock=world.clock) as base:
        url = base + links.PATHS[page].format(token=token(world, "user000", purpose))
        dom = _chromium("--dump-dom", url)  # the DOM as Chromium built it (it needs scripts on to say)
        shots = {name: _screenshot(url, width, tmp_path / f"{page}-{name}.png") for name, width in WIDTHS.items()}
    form = re.search(r'<form method="post"[^>]*>(.*?)</form>', dom, re.S)
    assert form is not None and "<script" not in dom  # a plain form, and no script: nothing to switch off
    if page == "onboard":
        assert len(re.findall(r'<fieldset class="rate">', form.group(1))) == 10
        assert len(re.findall(r'type="radio"', form.group(1))) == 30 and 'type="submit"' in form.group(1)
    for name, shot in shots.items():
        assert shot.width == WIDTHS[name]
        edge = {shot.getpixel((shot.width - 1, y)) for y in range(0, 1200, 3)}
        assert len(edge) == 1, f"{page} at {name} width: something reaches the right edge (overflow)"
        inked = {shot.getpixel((x, y)) for x in range(0, shot.width, 4) for y in range(0, 400, 4)}
        assert len(inked) > 20, f"{page} at {name} width looks blank"
