"""The Jinja environment behind rendering: where templates come from, the ``cache`` tag, CSS inlined once.

Pure: templates are read through Jinja's loader, nothing is written.

Three things make a day's 100,000 digests cheap to render (bench/scale.py):

* ``{% cache key %}…{% endcache %}`` renders its body once per key and reuses
  it. The templates wrap the parts of a digest that depend on one paper only
  (its title, summary and links, keyed by the paper view's number) so each is
  rendered once a day, not once per subscriber. A cached body must use
  nothing but what the key determines.
* ``Environment`` reads the context's dicts by key first, where Jinja would
  try (and fail at) an attribute first.
* An HTML template's ``<style>`` is inlined into the template source when it
  is loaded (``inline_css``), not into every rendered message. Jinja syntax is
  hidden from the CSS inliner behind placeholders and put back afterwards; a
  template where that cannot be done safely (Jinja tags inside a tag's
  attribute list, say) is left as it is, and the renderer inlines each message
  instead: slower, same result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

FRAGMENTS_KEPT = 50_000  # cached fragments before the cache starts over (a day holds a few thousand)

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters: never in a template, found on the way back
_PLACEHOLDER = re.compile(f"(?:<!--)?{_OPEN}(\\d+){_CLOSE}(?:-->)?")
_RAW_TEXT = ("title", "style", "script", "textarea")


class FragmentCache(Extension):
    """``{% cache key %}body{% endcache %}``: the body rendered once per (tag, key)."""

    tags = {"cache"}  # noqa: RUF012 - the attribute Jinja reads, as its docs write it

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment)
        environment.extend(fragments={})
        # Filters, not extension methods: Jinja calls a filter directly, a method through the
        # context's call machinery (~3 µs, some 45 times a digest).
        environment.filters[_LOOK] = self._look
        environment.filters[_KEEP] = self._keep
        self._tags = 0  # every cache tag parsed gets its own number, so no two share fragments

    def parse(self, parser: Parser) -> list[nodes.Node]:
        """A lookup, then either the stored text or the body rendered and stored: no macro made per use."""
        lineno = next(parser.stream).lineno
        self._tags += 1
        where = nodes.Const(f"{parser.name}:{lineno}:{self._tags}")
        key = parser.parse_expression()
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        found, made = f"_fragment_{self._tags}", f"_made_{self._tags}"
        look = nodes.Assign(nodes.Name(found, "store"), nodes.Filter(key, _LOOK, [where], [], None, None))
        make = [
            nodes.AssignBlock(nodes.Name(made, "store"), None, body),
            nodes.Output([nodes.Filter(nodes.Name(made, "load"), _KEEP, [where, key], [], None, None)]),
        ]
        missing = nodes.Test(nodes.Name(found, "load"), "none", [], [], None, None)
        choose = nodes.If(missing, make, [], [nodes.Output([nodes.Name(found, "load")])])
        return [look.set_lineno(lineno), choose.set_lineno(lineno)]

    def _look(self, key: Any, where: str) -> str | None:
        fragments: dict[tuple[str, Any], str] = self.environment.fragments  # type: ignore[attr-defined]
        return fragments.get((where, key))

    def _keep(self, made: str, where: str, key: Any) -> str:
        fragments: dict[tuple[str, Any], str] = self.environment.fragments  # type: ignore[attr-defined]
        if len(fragments) >= FRAGMENTS_KEPT:
            fragments.clear()
        fragments[(where, key)] = made
        return made


_LOOK, _KEEP = "_fragment_look", "_fragment_keep"  # the cache tag's filters


class Environment(jinja2.Environment):
    """Jinja's environment, reading a dict's key before an attribute of the same name.

    The context is plain dicts: ``item.title`` is a key. Jinja tries the
    attribute first, and the ``AttributeError`` it catches was a fifth of
    rendering a digest (some 160 lookups each). Where a key shadows a dict method
    (``items``, ``keys``), the key now wins, as a template's author would expect.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


class InliningLoader(jinja2.FileSystemLoader):
    """A file loader that hands out HTML templates with their CSS already inlined, where it can.

    ``inlined`` names the templates it did that for; the renderer inlines the
    output of any other HTML template itself.
    """

    def __init__(self, searchpath: list[str], inline: Callable[[str], str]) -> None:
        super().__init__(searchpath)
        self._inline = inline
        self.inlined: set[str] = set()

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        self.inlined.discard(template)
        if template.endswith(".html.j2") and "<style" in source:
            done = inline_css(source, self._inline)
            if done is not None:
                self.inlined.add(template)
                source = done
        return source, filename, uptodate


def inline_css(source: str, inline: Callable[[str], str]) -> str | None:
    """The template source with its CSS inlined, or None when that cannot be done safely.

    Jinja expressions become private-use placeholders (in text and attribute
    values); statements and comments between elements become HTML comments,
    which the HTML parser keeps where they are even inside a table.
    """
    if _OPEN in source or _CLOSE in source:
        return None
    found: list[str] = []
    parts: list[str] = []
    last = 0
    for match in _JINJA.finditer(source):
        parts.append(source[last : match.start()])
        before = "".join(parts)
        placeholder, inside_tag = f"{_OPEN}{len(found)}{_CLOSE}", _in_tag(before)
        if match.group().startswith("{{") or (not inside_tag and _in_raw_text(before)):
            parts.append(placeholder)  # an expression, or anything in <title> or <style>: text
        elif inside_tag:
            return None  # a statement inside a tag's attribute list: cannot be hidden safely
        else:
            parts.append(f"<!--{placeholder}-->")
        found.append(match.group())
        last = match.end()
    parts.append(source[last:])
    try:
        inlined = inline("".join(parts))
    except ValueError:
        return None
    if [int(n) for n in _PLACEHOLDER.findall(inlined)] != list(range(len(found))):
        return None  # the parser moved or dropped one: the template's structure is not plain enough
    return _PLACEHOLDER.sub(lambda m: found[int(m.group(1))], inlined)


def _in_tag(before: str) -> bool:
    return before.rfind("<") > before.rfind(">")


def _in_raw_text(before: str) -> bool:
    lower = before.lower()
    return any(lower.rfind(f"<{name}") > lower.rfind(f"</{name}") for name in _RAW_TEXT)
