"""A subscriber's Atom feed: one entry per paper of their latest digests, newest digest first.

Pure. Each entry's content is the paper's item as an HTML fragment (no document,
no ``<style>``: feed readers bring their own), and its ``alternate`` link is the
paper, so a feed reader opens the paper itself.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from digest.models import Ranked, StoredDigest
from digest.render.context import code_text, describe, links, paper_meta, shown_reasons, summary

ATOM = "http://www.w3.org/2005/Atom"


def atom_feed(
    name: str,
    history: Sequence[StoredDigest],
    items: Mapping[int, list[Ranked]],
    *,
    self_url: str | None,
    updated: datetime,
) -> bytes:
    """The feed of these digests (newest first) and their items (``Store.digest_papers``), as UTF-8 XML."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _add(feed, "id", f"tag:paper-digest,2026:{name}")
    _add(feed, "title", f"paper-digest for {name}")
    _add(feed, "updated", max((d.created_at for d in history), default=updated).isoformat())
    _add(ET.SubElement(feed, f"{{{ATOM}}}author"), "name", "paper-digest")
    if self_url:
        ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=self_url)
    for digest in history:
        for item in items.get(digest.id, []):
            _entry(feed, name, digest, item)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))


def _add(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}")
    element.text = text
    return element


def _entry(feed: ET.Element, name: str, digest: StoredDigest, item: Ranked) -> None:
    paper = item.paper
    entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
    _add(entry, "id", f"tag:paper-digest,2026:{name}/{digest.id}/{paper.id}")
    _add(entry, "title", " ".join(paper.title.split()))
    _add(entry, "updated", digest.created_at.isoformat())
    ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=links(paper)["main"] or "")
    _add(entry, "content", item_html(item)).set("type", "html")


def item_html(item: Ranked) -> str:
    """One paper of a digest as an HTML fragment: its title, authors, summary, why it was chosen, its links."""
    paper, where = item.paper, links(item.paper)
    short, _ = summary(paper.abstract)
    why = "; ".join(describe(r) for r in shown_reasons(item.why))
    title = escape(" ".join(paper.title.split()))
    parts = [f'<p><strong><a href="{escape(where["main"] or "")}">{title}</a></strong></p>']
    parts += [f"<p>{escape(text)}</p>" for text in (paper_meta(paper), short) if text]
    if why:
        parts.append(f"<p><em>Why: {escape(why)}</em></p>")
    more = [(code_text(paper), where.get("github")), ("Project page", where.get("project"))]
    anchors = [f'<a href="{escape(href)}">{escape(label)}</a>' for label, href in more if label and href]
    if anchors:
        parts.append(f"<p>{' · '.join(anchors)}</p>")
    return "\n".join(parts)
