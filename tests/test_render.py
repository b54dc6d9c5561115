"""Rendering: golden outputs, hostile paper text in every format, platform limits, the email parsed back."""

from __future__ import annotations

import binascii
import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from datetime import UTC, date, datetime
from email import policy
from email.parser import BytesParser
from functools import cache
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import ingest, links, profiles, rank, render
from digest.errors import RenderError
from digest.models import Destination, Digest, Message, Paper, Profile, Ranked, Reason, ReasonKind
from digest.render.context import wrap

from .conftest import DATA, DUMPS, ROOT, TODAY

GOLDEN = DATA / "golden" / "render"
EDITION = date(2026, 3, 18)
PROFILE = Profile(
    name="ada",
    keywords=(("pruning", 1.0), ("quantization", 1.5), ("model compression", 1.0)),
    seeds=("PD-Quant: Post-Training Quantization based on Prediction Difference Metric",),
    email="ada@example.org",
    trending=2,
    source="subscribers/ada.toml",
    channels=(Destination("email", address="ada@example.org"),),
)


@cache
def renderer() -> render.Renderer:
    return render.Renderer()


@cache
def fixed_digest() -> Digest:
    days = [ingest.load(p, today=TODAY, max_bytes=50 << 20)[0] for p in sorted(DUMPS.glob("*.txt"))]
    archive = list({p.id: p for d in days for p in d.papers}.values())
    day = list(days[2].papers)
    items = rank.rank(day, PROFILE, corpus=rank.Corpus(archive), normalise_title=ingest.normalise_title)
    hot = rank.trending(day, count=2, skip={i.paper.id for i in items})
    return Digest(profile=PROFILE, edition=EDITION, items=tuple(items), trending=tuple(hot), new_count=84)


def paper(title: str, n: int, abstract: str = "An abstract. It has two sentences. And a third one.") -> Paper:
    norm = ingest.normalise_title(title) or f"paper {n}"
    return Paper(ingest.paper_id(norm), title, norm, abstract, authors_count=3, upvotes=n, position=n)


def digest_of(papers: list[Paper], *, seed: str = "A Paper They Liked", **fields: Any) -> Digest:
    reasons = (Reason(ReasonKind.KEYWORD, "pruning", 0.4, ("title",)), Reason(ReasonKind.SEED, seed, 0.1))
    items = tuple(Ranked(p, i, 0.5, reasons) for i, p in enumerate(papers, start=1))
    return Digest(profile=PROFILE, edition=EDITION, items=items, new_count=len(papers), **fields)


@pytest.mark.parametrize(
    ("fmt", "suffix"), [(f, {"html": "html", "text": "txt", "md": "md"}.get(f, "json")) for f in render.FORMATS]
)
def test_golden(fmt: str, suffix: str) -> None:
    produced = renderer().render(fixed_digest(), fmt, unsubscribe_url="https://digest.example.org/u/ada/token")
    path = GOLDEN / f"ada.{fmt}.{suffix}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(produced, encoding="utf-8")
    assert produced == path.read_text(encoding="utf-8"), f"{path.name} changed; review, then UPDATE_GOLDEN=1"


def test_the_fixed_digest_is_a_real_one() -> None:
    digest = fixed_digest()
    assert 3 <= len(digest.items) <= 10
    assert render.subject(digest).startswith("Your papers for Wed 18 Mar: ")
    assert render.subject(digest).endswith(f"(+{len(digest.items) - 2})")


HOSTILE = [
    "<script>alert('x')</script> Attention Is All You Need",
    "@everyone look at this paper @here",
    "*markdown* _emphasis_ ~strike~ `code` [link](http://evil.example)",
    "Template {{ 7*7 }} and {% if true %}block{% endif %}",
    "GitHub ${{ x }} expression",
    "Line one\r\nBcc: victim@example.org\r\nSubject: injected",
    "Long " + "x" * 1995,
]


@cache
def hostile() -> Digest:
    papers = [paper(t, n) for n, t in enumerate(HOSTILE, start=1)]
    return digest_of(papers, seed=HOSTILE[0], trending=(paper("<b>bold</b> trending @channel", 99),))


def test_hostile_html_is_escaped_and_never_evaluated() -> None:
    html = renderer().message(hostile()).html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html
    assert "{{ 7*7 }}" in html and ">49<" not in html
    assert "${{ x }}" in html


def test_hostile_text_and_markdown() -> None:
    message = renderer().message(hostile())
    assert "{{ 7*7 }}" in message.text and "{% if true %}" in message.text
    assert r"\*markdown\* \_emphasis\_ \~strike\~ \`code\` \[link\](http://evil.example)" in message.markdown
    assert "@everyone" not in message.markdown and "@\u200beveryone" in message.markdown
    assert "\r" not in message.markdown


def test_hostile_subject_and_headers_stay_single_lines() -> None:
    digest = digest_of([paper(HOSTILE[5], 1)])
    message = renderer().message(digest)
    reasons = (Reason(ReasonKind.KEYWORD, "evil\r\nBcc: x@example.org", 0.4, ("title",)),)
    sneaky = Digest(profile=PROFILE, edition=EDITION, items=(Ranked(digest.items[0].paper, 1, 0.4, reasons),))
    for subject in (message.subject, render.subject(sneaky)):
        assert "\r" not in subject and "\n" not in subject
    mail = render.eml(renderer().message(sneaky), sender="digest@example.org", to="ada@example.org")
    parsed = BytesParser(policy=policy.default).parsebytes(mail)
    assert parsed["Bcc"] is None
    assert list(parsed.keys()).count("Subject") == 1


@pytest.mark.parametrize("kind", ["slack", "discord", "teams", "mattermost"])
def test_hostile_chat_payloads_are_inert(kind: str) -> None:
    payloads = renderer().chat(hostile(), kind)
    raw = json.dumps(payloads, ensure_ascii=False)
    if kind == "slack":  # Slack parses & < > everywhere but plain_text headers, so they must be entities
        parsed = [p["text"] for p in payloads] + [
            b["text"]["text"] for p in payloads for b in p["blocks"] if b["type"] == "section"
        ]
        assert not any("<script>" in text or "<b>" in text for text in parsed)
    else:  # Markdown platforms: every < of paper text is backslash-escaped
        assert "<script>" not in raw.replace(r"\\<", "")  # JSON doubles the escaping backslash
        assert r"\\<script\\>" in raw
    assert "@everyone" not in raw and "@here" not in raw and "@channel" not in raw
    assert ("{{ 7\u200b*\u200b7 }}" if kind == "slack" else r"{{ 7\\*7 }}") in raw  # shown, never evaluated
    assert "Bcc: victim" in raw.replace("\\r\\n", " ")  # the text is there, only its line breaks are gone
    assert "\\r" not in raw
    if kind == "slack":
        assert "<!everyone>" not in raw and "&lt;script&gt;" in raw
        assert "\u200b*\u200bmarkdown\u200b*\u200b" in raw
    else:
        assert r"\\*markdown\\*" in raw
    if kind == "discord":
        assert all(p["allowed_mentions"] == {"parse": []} for p in payloads)
    check_limits(kind, payloads)


def check_limits(kind: str, payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        if kind == "slack":
            assert len(payload["blocks"]) <= 50
            for block in payload["blocks"]:
                if block["type"] == "section":
                    assert len(block["text"]["text"]) <= 3000
                if block["type"] == "header":
                    assert len(block["text"]["text"]) <= 150
        elif kind == "discord":
            assert len(payload["content"]) <= 2000
            assert len(payload["embeds"]) <= 10
            assert sum(len(e["title"]) + len(e.get("description", "")) for e in payload["embeds"]) <= 6000
            assert all(len(e["title"]) <= 256 and len(e.get("description", "")) <= 4096 for e in payload["embeds"])
        elif kind == "mattermost":
            assert len(payload["text"]) <= 16_383
        elif kind == "teams":
            assert len(json.dumps(payload).encode()) <= 28_000
            assert payload["attachments"][0]["content"]["type"] == "AdaptiveCard"


@cache
def big() -> Digest:
    abstract = " ".join(f"Sentence number {n} of a rather long abstract about pruning networks." for n in range(40))
    return digest_of([paper(f"Paper {n}: Pruning Networks at Scale, Part {n}", n, abstract) for n in range(1, 201)])


@pytest.mark.parametrize("kind", ["slack", "discord", "teams", "mattermost"])
def test_a_200_paper_digest_fits_every_platform_and_keeps_every_paper_whole(kind: str) -> None:
    payloads = renderer().chat(big(), kind)
    assert len(payloads) > 1
    check_limits(kind, payloads)
    raw = [json.dumps(p, ensure_ascii=False) for p in payloads]
    for n in range(1, 201):
        title = f"Paper {n}: Pruning Networks at Scale, Part {n}"
        holders = [i for i, text in enumerate(raw) if f"{title}" in text or f"{title}".replace(":", "\\\\:") in text]
        assert len(holders) == 1, f"paper {n} in {holders}"
    first_seen = [next(i for i, text in enumerate(raw) if f"Part {n}" in text) for n in (1, 50, 100, 150, 200)]
    assert first_seen == sorted(first_seen)


def test_generic_webhook_is_the_digest_as_data() -> None:
    [payload] = renderer().chat(fixed_digest(), "webhook")
    assert payload["subscriber"] == "ada" and payload["edition"] == "2026-03-18"
    assert [i["id"] for i in payload["items"]] == [i.paper.id for i in fixed_digest().items]
    assert all(i["why"] and i["url"].startswith("https://") for i in payload["items"])


def test_email_parsed_back() -> None:
    message = renderer().message(fixed_digest(), unsubscribe_url="https://digest.example.org/u/ada/t")
    sent = datetime(2026, 3, 18, 6, 30, tzinfo=UTC)
    mail = render.eml(
        message,
        sender="digest@example.org",
        to="ada@example.org",
        reply_to="owner@example.org",
        message_id="<ada.2026-03-18.email@digest.example.org>",
        sent=sent,
    )
    parsed = BytesParser(policy=policy.default).parsebytes(mail)
    assert parsed["Subject"] == message.subject
    assert parsed["From"] == "paper-digest <digest@example.org>"
    assert (parsed["To"], parsed["Reply-To"]) == ("ada@example.org", "owner@example.org")
    assert parsed["Message-ID"] == "<ada.2026-03-18.email@digest.example.org>"
    assert parsed["Date"].datetime == sent
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = (part for part in parsed.iter_parts())
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert b"\r\n" in mail and b"\n" not in mail.replace(b"\r\n", b"")  # CRLF, as SMTP wants
    assert text.get_content().replace("\r\n", "\n") == message.text  # MIME text is CRLF on the wire
    # The HTML travels as 7bit: the same document, with characters beyond ASCII as references
    # and any line over 998 octets broken between two attributes.
    assert html["Content-Transfer-Encoding"] == "7bit"
    assert all(len(line) <= render.MAX_LINE for line in mail.split(b"\r\n"))
    got = html.get_content()
    assert "&#8594;" in got and "→" in message.html  # "Read more →"
    assert unescape(" ".join(got.split())) == unescape(" ".join(message.html.split()))
    assert fixed_digest().items[0].paper.title.split(":")[0] in text.get_content()


def test_an_email_body_made_ahead_gives_the_same_email() -> None:
    # Digests are frozen with their MIME body; sending adds the headers to it.
    message = render.Renderer().message(fixed_digest())
    options: dict[str, Any] = {"sender": "d@example.org", "to": "ada@example.org", "message_id": "<m@example.org>"}
    made_ahead = render.eml(message, body=render.mime_body(message), **options)
    assert made_ahead == render.eml(message, **options)
    assert made_ahead.endswith(render.mime_body(message))


def test_a_long_html_line_is_broken_between_attributes() -> None:
    html = '<p class="a" title="' + "x" * 600 + '" lang="en" style="' + "color: red; " * 40 + '">é</p>\n'
    mail = render.eml(Message("s", "t\n", html, ""), sender="d@example.org", to="x@example.org")
    part = list(BytesParser(policy=policy.default).parsebytes(mail).iter_parts())[1]
    assert part["Content-Transfer-Encoding"] == "7bit"
    assert all(len(line) <= render.MAX_LINE for line in mail.split(b"\r\n"))
    got = part.get_content().replace("\r\n", "\n")
    assert got != html and unescape(" ".join(got.split())) == unescape(" ".join(html.split()))


@pytest.mark.parametrize(
    "html",
    [
        "<p>" + "long words " * 120 + "</p>\n",  # a line over 998 octets, with no tag to break it in
        "<style>p::after { content: '→'; }</style><p>é</p>\n",  # a reference would not be decoded in <style>
        # An ASCII "&#" in the style says nothing of the script after it.
        "<style>/* &#38; */</style><script>let s = '→';</script><p>é</p>\n",
    ],
)
def test_html_that_cannot_be_7bit_goes_quoted_printable(html: str) -> None:
    mail = render.eml(Message("s", "t\n", html, ""), sender="d@example.org", to="x@example.org")
    part = list(BytesParser(policy=policy.default).parsebytes(mail).iter_parts())[1]
    assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert part.get_content().replace("\r\n", "\n") == html
    assert all(len(line) <= render.MAX_LINE for line in mail.split(b"\r\n"))


def test_non_ascii_headers_and_bodies_round_trip() -> None:
    message = Message("Grüße: 日本語 and ümlauts", "tëxt — with “quotes”\n", "<p>é</p>\n", "")
    mail = render.eml(message, sender="d@example.org", to="x@example.org", sender_name="Pâper Digest")
    parsed = BytesParser(policy=policy.default).parsebytes(mail)
    assert mail.isascii()
    assert (parsed["Subject"], parsed["From"]) == ("Grüße: 日本語 and ümlauts", "Pâper Digest <d@example.org>")
    assert next(parsed.iter_parts()).get_content().replace("\r\n", "\n") == "tëxt — with “quotes”\n"


def test_html_has_css_inlined_and_nothing_external() -> None:
    html = renderer().message(fixed_digest()).html
    assert 'style="' in html and "prefers-color-scheme: dark" in html  # inlined, @media kept
    assert "<script" not in html and "<img" not in html and "<link" not in html
    assert 'role="presentation"' in html and 'width="600"' in html


def test_links_use_arxiv_when_the_id_is_one() -> None:
    arxiv = Paper("2211.02556", "Some Title", "some title")
    assert render.links(arxiv)["main"] == "https://arxiv.org/abs/2211.02556"
    hashed = paper("Some Title (with) [brackets]", 1)
    found = render.links(hashed)
    assert found["main"] == found["hf_search"]
    assert found["hf_search"] == "https://huggingface.co/papers?q=Some+Title+%28with%29+%5Bbrackets%5D"
    assert (
        found["arxiv_search"]
        == "https://arxiv.org/search/?searchtype=title&query=Some%20Title%20%28with%29%20%5Bbrackets%5D"
    )


def test_an_empty_day_notice() -> None:
    notice = Digest(profile=PROFILE, edition=EDITION, items=(), trending=(paper("Hot Paper", 1),), new_count=40)
    message = renderer().message(notice)
    assert message.subject == "Nothing matched today, Wed 18 Mar: 40 new papers"
    assert "Nothing matched today" in message.html and "Hot Paper" in message.html
    assert "Nothing matched your profile today, out of 40 new papers" in message.text


def test_a_user_template_overrides_the_packaged_one(tmp_path: Path) -> None:
    (tmp_path / "email.txt.j2").write_text("Hello {{ name }}: {{ count }} papers\n")
    message = render.Renderer(templates_dir=tmp_path).message(fixed_digest())
    assert message.text == f"Hello ada: {len(fixed_digest().items)} papers\n"
    assert "<html" in message.html  # the others still come from the package


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hello {{ nmae }}\n", r"email\.txt\.j2: 'nmae' is undefined; check the names the template uses"),
        ("Hello {% if %}\n", r"email\.txt\.j2:1: template syntax error"),
    ],
)
def test_a_broken_user_template_is_one_clear_error(tmp_path: Path, template: str, message: str) -> None:
    (tmp_path / "email.txt.j2").write_text(template)
    with pytest.raises(RenderError, match=message) as caught:
        render.Renderer(templates_dir=tmp_path).message(fixed_digest())
    assert "\n" not in str(caught.value)


def test_the_wheel_ships_the_templates_the_example_config_and_the_license(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").glob("*.j2"):
        assert f"digest/templates/{template.name}" in names
    assert "digest/config.example.toml" in names  # `digest init` writes it
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_signed_links_reach_every_format() -> None:
    signed = links.Links("https://digest.example.org", "s3cret", "ada", "ab" * 12)
    digest = fixed_digest()
    edition = digest.edition.isoformat()
    wanted = [signed.feedback(item.paper.id, vote, edition) for item in digest.items for vote in (1, -1)]
    message = renderer().message(digest, links=signed)
    for body in (message.html, message.text, message.markdown):
        assert all(url in body for url in wanted)
        assert signed.preferences in body and signed.unsubscribe in body
    for kind in ("slack", "discord", "teams", "mattermost"):
        payloads = json.dumps(renderer().chat(digest, kind, links=signed))
        assert all(url in payloads for url in wanted), kind
    plain = renderer().message(digest)
    assert "/f/" not in plain.html + plain.text + plain.markdown  # no base URL and secret: no links to nowhere


@pytest.mark.parametrize("fmt", render.FORMATS)
def test_what_hugging_faces_json_brings_reaches_every_format(fmt: str) -> None:
    """A paper from an hf-json dump: its arXiv link, three authors and "et al.", GitHub with stars and the AI
    summary said to be Hugging Face's; a paper from a text page shows none of it."""
    hf, _ = ingest.load(DATA / "hf" / "2026-11-20.json", today=TODAY, max_bytes=50 << 20)
    full, _bare, _known = hf.papers
    text_page = paper("A Paper From A Text Page", 2)
    produced = renderer().render(digest_of([full, text_page]), fmt, unsubscribe_url="https://e.org/u/t")
    if fmt == "webhook":  # the generic JSON carries the fields themselves
        first, second = json.loads(produced)["items"]
        assert first["url"] == "https://arxiv.org/abs/2411.01234" and first["github_stars"] == 310
        assert first["authors"] == ["Zoë Müller", "Kenji Satō", "Ana Lima", "Bo Chen"]
        assert first["ai_summary"] == "A diffusion model makes calibrated medium-range weather ensembles."
        assert (second["authors"], second["github_repo"], second["ai_summary"]) == ([], None, None)
        return
    shown = unescape(produced) if fmt != "html" else unescape(produced.replace("&nbsp;", " "))
    if fmt not in ("text", "md", "html"):
        shown = json.dumps(json.loads(produced), ensure_ascii=False).replace("\u200b", "")
    assert "https://arxiv.org/abs/2411.01234" in shown
    assert "Zoë Müller, Kenji Satō, Ana Lima et al." in shown
    assert "https://github.com/example/wx-diffusion" in shown and "GitHub ★ 310" in shown
    assert "Hugging Face's AI summary: A diffusion model makes calibrated" in shown.replace("\\'", "'")
    assert shown.count("GitHub") == 1 and shown.count("AI summary") == 1  # not on the text page's paper


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=400).filter(lambda s: not s.isascii() and s.strip() == s and "\x00" not in s))
def test_a_non_ascii_subject_is_encoded_words_that_mail_readers_decode(subject: str) -> None:
    subject = " ".join(subject.split()) or "é"
    raw = render.eml(Message(subject, "x", "<p>x</p>", "x"), sender="d@example.org", to="a@example.org")
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert all(len(line) <= 78 for line in head.split("\r\n") if line.startswith((" ", "Subject:")))
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == render.header_text(subject)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=0, max_size=30), max_size=40),
    st.sampled_from([" ", " ", " ", "  ", "\t", "\xa0", "\n"]),
    st.integers(min_value=10, max_value=80),
)
def test_the_plain_text_wrap_is_textwrap_s(words: list[str], gap: str, width: int) -> None:
    """The fast path gives exactly what textwrap gives, for any text (the rest goes to textwrap itself)."""
    text = gap.join(words)
    expected = textwrap.wrap(text, width=width, break_on_hyphens=False, break_long_words=True)
    assert wrap(text, width) == "\n   ".join(expected)


_LINES = st.lists(
    st.lists(st.sampled_from(["a", "b", " ", "\t", "=", ".", "é", "→", "<", "&", "\r", "x" * 40]), max_size=12).map(
        "".join
    ),
    max_size=8,
)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(text_lines=_LINES, html_lines=_LINES, again=st.booleans())
def test_a_mime_body_decodes_to_its_text_and_html_with_lines_that_fit(
    text_lines: list[str], html_lines: list[str], again: bool
) -> None:
    """Quoted-printable text, encoded line by line with each line's encoding kept, is what encoding the whole text
    at once gives; 7bit HTML (or quoted-printable) gives the HTML back, references only past ASCII."""
    text, html = "\n".join(text_lines) + "\n", "<p>" + "\n".join(html_lines) + "</p>\n"
    body = render.mime_body(Message("s", text, html, ""))
    if again:  # the second time, every line's encoding comes from the store
        assert render.mime_body(Message("s", text, html, "")) == body

    def lf(value: str) -> str:
        return value.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") + "\n"

    whole = binascii.b2a_qp(lf(text).encode(), istext=True).replace(b"\n", b"\r\n")
    assert b"quoted-printable\r\n\r\n" + whole + b"\r\n--" in body
    parsed = BytesParser(policy=policy.default).parsebytes(b"Subject: s\r\n" + body)
    plain, rich = (part.get_content().replace("\r\n", "\n") for part in parsed.iter_parts())
    assert plain == lf(text)
    assert unescape(rich) == lf(html) and (rich == lf(html) or rich.isascii())
    assert all(len(line) <= render.MAX_LINE for line in body.split(b"\r\n"))


_PIECES = st.sampled_from(["a", " ", "\n", "\r", "é", "→", "&#183;", "&#8212;", "&#39;", "&", "=", "x" * 500])


@settings(max_examples=300, deadline=None)
@given(text=st.lists(_PIECES, max_size=14).map("".join), html=st.lists(_PIECES, max_size=14).map("".join))
def test_a_mime_body_says_truly_whether_it_gives_its_text_and_html_back(text: str, html: str) -> None:
    """A digest keeps only the MIME body when it gives the text and HTML back (``email_body`` says so without
    decoding): where it says yes, decoding gives exactly them; where no, the digest keeps them beside it."""
    message = Message("s", text, "<p>" + html, "")
    body, gives_back = render.email_body(message)
    assert body == render.mime_body(message)
    if gives_back:
        assert render.alternatives(body) == (message.text, message.html)


@pytest.mark.slow
def test_every_subject_of_the_demo_and_bench_subscribers_names_only_what_is_in_the_digest(tmp_path: Path) -> None:
    import shutil

    from digest.store import Store

    from .deliverykit import make_world

    world = make_world(tmp_path, people=0)
    folder = world.settings.subscribers.dir
    for source in (ROOT / "examples" / "subscribers", ROOT / "bench" / "profiles"):
        for path in source.glob("*.toml"):
            shutil.copy(path, folder / path.name)
    world.send()  # they are subscribed from now on
    world.clock.advance(7 * 24 * 3600)  # a week later every subscriber, weekly and weekdays too, has a digest due
    world.send()
    checked = 0
    with Store.open(world.settings.database.path) as store:
        for subscriber in store.subscribers.all():
            [digest] = store.digests.recent(subscriber.name, limit=1)
            checked += 1
            papers = store.digests.papers([digest.id])[digest.id]
            profile = profiles.parse(subscriber.text, source="p", default_name=subscriber.name)
            if not papers:
                assert digest.subject.startswith("Nothing matched today")
                continue
            named = digest.subject.split(": ", 1)[1].rsplit(" (+", 1)[0].split(", ")
            keywords = {render.header_text(term, limit=40) for term, _ in profile.keywords}
            first = papers[0].paper.title  # the digest's first item (its papers come in rank order)
            assert set(named) <= keywords or named == [render.header_text(first, limit=60)], (
                subscriber.name,
                digest.subject,
            )
    assert checked == len(list(folder.glob("*.toml"))) == 17


@pytest.mark.parametrize("fmt", ["text", "html", "md", "mattermost"])
def test_the_archive_likeness_reason_is_said_once_in_the_header(fmt: str) -> None:
    digest = fixed_digest()
    assert sum(r.detail == "archive" for item in digest.items for r in item.why) >= 5  # it counted for most items
    produced = " ".join(renderer().render(digest, fmt).split())  # the text part wraps it over lines
    assert produced.count("best matches in the archive, such as") == 1
    assert "like the archive's best matches" not in produced  # under no item: it was no item's main reason


def test_an_archive_match_that_did_most_for_a_paper_is_said_under_it() -> None:
    from digest.render.context import SHOWN_ARCHIVE, shown_reasons

    archive = Reason(ReasonKind.SEED, "An archive paper", 3 * SHOWN_ARCHIVE, (), "archive")
    weak = Reason(ReasonKind.KEYWORD, "pruning", SHOWN_ARCHIVE, ("abstract",), None)
    assert shown_reasons([weak, archive]) == [archive, weak]
    assert shown_reasons([weak._replace(score=9.0), archive]) == [weak._replace(score=9.0)]


@pytest.mark.parametrize("fmt", ["html", "text", "md"])
def test_a_digest_without_signed_links_tells_the_reader_plain_words_only(fmt: str) -> None:
    # No base_url or no secret: no links to sign. The reader still learns how to stop, in words
    # meant for them; never the operator's file path or an admin command.
    produced = renderer().render(fixed_digest(), fmt)
    footer = produced[produced.rindex("You get this because") :]
    assert "digest subscribe" not in footer and "digest unsubscribe" not in footer
    assert ".toml" not in produced and str(PROFILE.source) not in produced
    if fmt != "md":  # an email: replying reaches [email] reply_to, else From (set on every email)
        assert "reply to this email" in footer


def test_vote_links_are_plain_links_with_a_44_px_tap_target() -> None:
    # The inlined style is what a mail client without <style> support keeps: the height must come from it.
    signed = links.Links("https://digest.example.org", "s3cret", "ada", "ab" * 12)
    html = renderer().message(fixed_digest(), links=signed).html
    votes = re.findall(r'<a class="vote" href="[^"]+" style="([^"]+)">', html)
    assert len(votes) == 2 * len(fixed_digest().items)
    for style in votes:
        rules = dict(rule.strip().split(": ", 1) for rule in style.split(";") if rule.strip())
        assert rules["display"] == "inline-block" and rules["text-decoration"] == "none"
        vertical, _ = rules["padding"].split()
        line = 14 * 1.5  # .votes: font-size 14px, line-height 1.5, inherited by the links
        assert line + 2 * float(vertical.removesuffix("px")) + 2 * 1 >= 44
    assert re.search(r'<p class="votes" style="[^"]*font-size: 14px;line-height: 1.5', html)
