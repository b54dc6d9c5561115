"""Every format of many real digests, byte for byte as rendered before making was made faster.

The digests: the demo's subscribers and forty bench-like readers (keywords drawn
from the dumps' own vocabulary) on the example dumps, a digest with hostile paper
text and an empty one; each with signed vote links, and the demo's also without.
For each: the subject, text, HTML, Markdown, the MIME body an email carries,
and every chat platform's payloads. ``golden/bytes.json`` holds their SHA-256
digests, written by the rendering path as it was (``UPDATE_GOLDEN=1`` writes it
again: only for a change meant to alter what readers get).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from functools import cache

from digest import ingest, links, profiles, rank, render
from digest.models import CHAT_KINDS, Destination, Digest, Paper, Profile

from .conftest import DATA, DUMPS, ROOT
from .test_render import EDITION, hostile, renderer

GOLDEN = DATA / "golden" / "bytes.json"
SECRET = "golden-signing-secret-" + "k" * 24


@cache
def days() -> tuple[list[Paper], list[Paper]]:
    """The archive (every example dump) and the day (the third dump)."""
    loaded = [ingest.load(p, today=EDITION, max_bytes=50 << 20)[0] for p in sorted(DUMPS.glob("*.txt"))]
    archive = list({p.id: p for d in loaded for p in d.papers}.values())
    return archive, list(loaded[2].papers)


def readers() -> list[tuple[Profile, bool]]:
    """The demo's subscribers (True), then forty readers as bench/scale.py makes them (3 to 8 keywords each)."""
    demo = [profiles.load(path)[0] for path in sorted((ROOT / "examples" / "subscribers").glob("*.toml"))]
    _, day = days()
    words = sorted({w for p in day for w in re.findall(r"[a-z]{5,}", f"{p.title} {p.abstract}".lower())})
    rng = random.Random(7)
    bench = [
        Profile(
            name=f"reader{n:02d}",
            keywords=tuple((w, rng.choice((1.0, 1.5, 2.0))) for w in rng.sample(words, rng.randint(3, 8))),
            email=f"reader{n:02d}@example.org",
            trending=rng.choice((0, 2, 3)),
            channels=(Destination("email", address=f"reader{n:02d}@example.org"),),
        )
        for n in range(40)
    ]
    return [(p, True) for p in demo] + [(p, False) for p in bench]


@cache
def digests() -> list[tuple[str, Digest, links.Links | None]]:
    archive, day = days()
    space = rank.Corpus(archive)
    found: list[tuple[str, Digest, links.Links | None]] = []
    for profile, in_demo in readers():
        items = rank.rank(day, profile, corpus=space, normalise_title=ingest.normalise_title)
        hot = rank.trending(day, count=profile.trending, skip={i.paper.id for i in items})
        digest = Digest(profile, EDITION, tuple(items), tuple(hot), new_count=len(day))
        key = hashlib.sha256(profile.name.encode()).hexdigest()[:24]
        found.append((profile.name, digest, links.Links("https://digest.example.org", SECRET, profile.name, key)))
        if in_demo:
            found.append((f"{profile.name}-unlinked", digest, None))
    mixed = hostile()
    found.append(("hostile", mixed, links.Links("https://digest.example.org", SECRET, "ada", "ab" * 12)))
    empty = Digest(mixed.profile, EDITION, (), (), new_count=3)
    found.append(("empty", empty, links.Links("https://digest.example.org", SECRET, "ada", "cd" * 12)))
    return found


def outputs(digest: Digest, signed: links.Links | None) -> dict[str, bytes]:
    """Every format of one digest as bytes, made the way ``digest send`` makes them."""
    message = renderer().message(digest, links=signed)
    made = {
        "subject": message.subject.encode(),
        "text": message.text.encode(),
        "html": message.html.encode(),
        "md": message.markdown.encode(),
        "mime": render.mime_body(message),
    }
    for kind in CHAT_KINDS:
        made[kind] = json.dumps(renderer().chat(digest, kind, links=signed)).encode()
    return made


def hashes() -> dict[str, str]:
    return {
        f"{name}/{fmt}": hashlib.sha256(data).hexdigest()
        for name, digest, signed in digests()
        for fmt, data in outputs(digest, signed).items()
    }


def test_the_digests_cover_what_readers_get() -> None:
    made = digests()
    assert len(made) >= 45
    assert sum(1 for _, d, _ in made if len(d.items) >= 5) >= 10, "most digests should have several papers"
    assert any(not d.items for _, d, _ in made)
    assert any(s is None for _, _, s in made) and any(s is not None for _, _, s in made)


def test_every_digest_is_kept_once_its_mime_body_giving_back_text_and_html() -> None:
    for name, digest, signed in digests():
        message = renderer().message(digest, links=signed)
        body, gives_back = render.email_body(message)
        assert gives_back, f"{name}: the text and HTML would be kept twice"
        assert render.alternatives(body) == (message.text, message.html)


def test_every_format_is_byte_identical() -> None:
    produced = hashes()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(produced, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    changed = sorted(k for k in expected if produced.get(k) != expected[k])
    assert produced.keys() == expected.keys()
    assert not changed, f"{len(changed)} outputs changed, first {changed[:5]}"
