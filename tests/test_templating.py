"""The template machinery: the cache tag renders a paper's part once, CSS is inlined into templates once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import css_inline
import jinja2

from digest import render
from digest.render import templating

from .test_render import digest_of, fixed_digest, paper

INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def environment(tmp_path: Path, **templates: str) -> jinja2.Environment:
    for name, text in templates.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return jinja2.Environment(
        loader=templating.InliningLoader([str(tmp_path)], INLINER.inline),
        extensions=[templating.FragmentCache],
        autoescape=True,
    )


def test_a_cached_part_is_rendered_once_per_key(tmp_path: Path) -> None:
    calls: list[str] = []

    def seen(name: str) -> str:
        calls.append(name)
        return name.upper()

    env = environment(tmp_path, **{"t.j2": "{% cache key %}<b>{{ seen(key) }}</b>{% endcache %}|{{ rank }}"})
    template = env.get_template("t.j2")
    outputs = [template.render(key=key, rank=n, seen=seen) for n, key in enumerate(["a", "b", "a", "a", "b"])]
    assert outputs == ["<b>A</b>|0", "<b>B</b>|1", "<b>A</b>|2", "<b>A</b>|3", "<b>B</b>|4"]
    assert calls == ["a", "b"]


def test_the_same_key_in_two_places_is_two_fragments(tmp_path: Path) -> None:
    env = environment(tmp_path, **{"t.j2": "{% cache k %}1{{ k }}{% endcache %}{% cache k %}2{{ k }}{% endcache %}"})
    assert env.get_template("t.j2").render(k="x") == "1x2x"


def test_the_email_template_is_inlined_once_and_renders_what_per_message_inlining_gave() -> None:
    renderer = render.Renderer()
    html = renderer.render(fixed_digest(), "html")
    # The same environment reading the plain template file, its output inlined as a whole.
    plain = renderer._env.overlay(loader=jinja2.FileSystemLoader(str(render.package_templates())))
    plain.fragments = {}  # type: ignore[attr-defined]  # its own cache: the renderer's fragments are inlined
    per_message = INLINER.inline(plain.get_template("email.html.j2").render(**renderer.context(fixed_digest())))
    assert html == per_message and 'style="' in html


def test_a_template_the_loader_cannot_inline_is_inlined_per_message(tmp_path: Path) -> None:
    (tmp_path / "email.html.j2").write_text(
        "<html><head><style>p { color: red; }</style></head><body>"
        '<p {% if count %}title="{{ count }} papers"{% endif %}>{{ subject }}</p></body></html>',
        encoding="utf-8",
    )
    renderer = render.Renderer(templates_dir=tmp_path)
    html = renderer.render(fixed_digest(), "html")
    assert "email.html.j2" not in renderer._loader.inlined
    assert '<p title="' in html and 'style="color: red;"' in html


def test_jinja_syntax_survives_the_inliner_everywhere_it_may_stand() -> None:
    source = (
        "<html><head><title>{{ t }}</title><style>td { color: red; } a { color: blue; }</style></head><body>"
        '<table>{% for x in xs %}<tr><td><a href="{{ x }}">{# a link #}{{ x }}</a></td></tr>{% endfor %}</table>'
        "</body></html>"
    )
    inlined = templating.inline_css(source, INLINER.inline)
    assert inlined is not None
    output = jinja2.Template(inlined).render(t="T", xs=["u", "v"])
    assert "<title>T</title>" in output
    assert output.count('<td style="color: red;"><a href="u" style="color: blue;">u</a>') == 1
    assert output.index('href="u"') < output.index('href="v"')


def test_a_paper_seen_again_with_new_counts_is_rendered_anew() -> None:
    # The daemon renders day after day in one process: the same paper with more upvotes is new content.
    renderer = render.Renderer()
    monday = paper("Sparse Attention at Scale", 5)
    tuesday = dataclasses.replace(monday, upvotes=41)
    for fmt in ("html", "text", "md"):
        first = renderer.render(digest_of([monday], trending=(monday,)), fmt)
        again = renderer.render(digest_of([tuesday], trending=(tuesday,)), fmt)
        assert "▲ 5" in first and "▲ 41" not in first, fmt
        assert "▲ 41" in again and "▲ 5" not in again, fmt


def test_a_dict_key_named_like_a_dict_method_is_the_key(tmp_path: Path) -> None:
    env = templating.Environment(loader=jinja2.DictLoader({"t.j2": "{{ d.items }}|{{ d.get('x') }}|{{ d.title }}"}))
    assert env.get_template("t.j2").render(d={"items": 3, "x": 1, "title": "T"}) == "3|1|T"
