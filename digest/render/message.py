"""Rendering: a ``Digest`` becomes a ``Message`` (subject, text, HTML, Markdown) and chat payloads.

Pure: no files are written, nothing is sent, and the clock is not read (the
edition date is in the digest). Templates are Jinja with ``StrictUndefined``;
HTML is autoescaped, and paper text only ever arrives as data, never as
template source. Templates come from the package (``digest/templates`` in a
wheel, ``templates/`` in a checkout); a file of the same name in a configured
``templates_dir`` overrides one.

Chat payloads are assembled from one rendered fragment per paper by the
platform's ``ChatStyle`` (``digest.render.chat.STYLES``), packed into as many
messages as its limits require.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import css_inline
import jinja2

from digest.errors import RenderError
from digest.links import Links
from digest.models import CHAT_KINDS, FORMATS, Digest, Message
from digest.render.chat import STYLES, ChatDraft
from digest.render.context import context, header_text, intro, md_escape, wrap
from digest.render.templating import Environment, FragmentCache, InliningLoader

__all__ = ["FORMATS", "Renderer", "package_templates"]  # FORMATS re-exported: the formats are the models' list


def package_templates() -> Path:
    """The templates that ship with the package (or a source checkout's ``templates/``)."""
    bundled = resources.files("digest") / "templates"
    if bundled.is_dir():
        return Path(str(bundled))
    return Path(__file__).resolve().parent.parent.parent / "templates"  # a source checkout


class Renderer:
    """The Jinja environment and the CSS inliner, built once and reused for every digest."""

    def __init__(self, *, templates_dir: Path | None = None) -> None:
        search = [str(templates_dir)] if templates_dir is not None else []
        search.append(str(package_templates()))
        self._inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        self._loader = InliningLoader(search, self._inliner.inline)
        self._env = Environment(
            loader=self._loader,
            extensions=[FragmentCache],
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters["md"] = md_escape
        self._env.filters["wrap"] = wrap

    def _render(self, template: str, /, **data: Any) -> str:
        try:
            return self._env.get_template(template).render(**data)
        except jinja2.TemplateSyntaxError as e:
            where = f"{e.filename or template}:{e.lineno}"
            raise RenderError(f"{where}: template syntax error ({e.message}); fix the template") from e
        except jinja2.TemplateNotFound as e:
            raise RenderError(f"template {template} not found; check [render] templates_dir") from e
        except jinja2.UndefinedError as e:
            raise RenderError(f"{template}: {e.message}; check the names the template uses") from e

    def context(
        self, digest: Digest, *, unsubscribe_url: str | None = None, links: Links | None = None
    ) -> dict[str, Any]:
        """The data every template gets (see ``context.context``)."""
        return context(digest, unsubscribe_url=unsubscribe_url, links=links)

    def message(
        self,
        digest: Digest,
        *,
        unsubscribe_url: str | None = None,
        links: Links | None = None,
        markdown: bool = True,
    ) -> Message:
        """Subject, plain text, HTML with CSS inlined, and Markdown (left empty with ``markdown=False``).

        ``links``: the subscriber's signed links (feedback, preferences, unsubscribe).
        """
        data = context(digest, unsubscribe_url=unsubscribe_url, links=links)
        html = self._render("email.html.j2", **data)
        if "email.html.j2" not in self._loader.inlined:  # a custom template the loader could not pre-inline
            html = self._inliner.inline(html)
        return Message(
            subject=data["subject"],
            text=self._render("email.txt.j2", **data),
            html=html,
            markdown=self._render("digest.md.j2", **data) if markdown else "",
        )

    def chat(
        self, digest: Digest, kind: str, *, unsubscribe_url: str | None = None, links: Links | None = None
    ) -> list[dict[str, Any]]:
        """The JSON payloads that post this digest to a chat platform, in order."""
        style = STYLES.get(kind)
        if style is None:
            raise RenderError(f"no chat platform {kind!r}; expected one of {', '.join(sorted(STYLES))}")
        data = context(digest, unsubscribe_url=unsubscribe_url, links=links)
        items: list[str] = []
        trending: list[str] = []
        if style.markup is not None:
            items = [
                self._render(
                    f"chat_item.{style.markup}.j2", item=item, esc=style.escape, with_title=style.with_title
                ).strip()
                for item in data["items"]
            ]
            trending = [
                self._render(f"chat_trending.{style.markup}.j2", paper=paper, esc=style.escape).strip()
                for paper in data["trending"]
            ]
        question = None
        if style.markup is not None and data["question"] is not None:
            template = f"chat_question.{style.markup}.j2"
            question = self._render(template, question=data["question"], esc=style.escape).strip()
        heading = header_text(data["subject"], limit=150)
        return style.payloads(ChatDraft(digest, data, heading, intro(data), items, trending, question))

    def render(self, digest: Digest, fmt: str, *, unsubscribe_url: str | None = None) -> str:
        """One format as text, for previews and files: html, text, md, or a chat kind as JSON."""
        if fmt in CHAT_KINDS:
            payloads = self.chat(digest, fmt, unsubscribe_url=unsubscribe_url)
            return json.dumps(payloads if len(payloads) > 1 else payloads[0], indent=2, ensure_ascii=False) + "\n"
        message = self.message(digest, unsubscribe_url=unsubscribe_url)
        return {"html": message.html, "text": message.text, "md": message.markdown}[fmt]
