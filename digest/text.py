"""Text every room shares: a display line, a title's identity form, a paper's id, word tokens.

Pure: no files, clock or environment.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from functools import lru_cache

_SPACES = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"))
# Control characters (but tab and line ends): nothing a page shows, and on a terminal they could move the
# cursor or recolour the screen, so text from a dump drops them.
_CONTROLS = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)])
_LATEX_STYLE = re.compile(
    r"\\(?:text(?:bf|it|tt|sc|rm|sf)?|emph|math(?:rm|bf|it|cal|bb|sf|tt|frak)?|"
    r"bm|boldsymbol|operatorname)\b"
)
_LATEX_COMMAND = re.compile(r"\\([A-Za-z]+)")
_NOT_WORD = re.compile(r"[\W_]+")


def plural(count: int, noun: str) -> str:
    """``1 paper``, ``0 papers``, ``3,000 emails``, ``2 deliveries`` (a noun phrase: its last word counts)."""
    if count == 1:
        return f"1 {noun}"
    many = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{count:,} {many}"


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # all but the tab


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (an escape sequence's ESC among them) shown as
    ``\\x1b`` and the like, so a name or keyword cannot move the cursor or recolour the screen."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def without_controls(text: str) -> str:
    """``text`` with control characters dropped (tabs and line ends kept)."""
    return text.translate(_CONTROLS)


def clean_line(line: str) -> str:
    """One display line: invisible and control characters dropped, all spaces folded to one."""
    return _SPACES.sub(" ", line.translate(_INVISIBLE).translate(_CONTROLS)).strip()


def normalise_title(title: str) -> str:
    """The identity form of a title: NFKC, casefolded, LaTeX and punctuation folded.

    ``"Pangu-Weather: A 3D {Model}"`` and ``"pangu weather a 3d model"`` are the
    same paper. Greek letters fold to their names, so ``$\\alpha$-Net`` and
    ``α-Net`` agree, and accents are dropped.
    """
    text = html.unescape(unicodedata.normalize("NFKC", title))
    text = _LATEX_STYLE.sub(" ", text)
    text = _LATEX_COMMAND.sub(r" \1 ", text)
    folded = []
    for char in unicodedata.normalize("NFKD", text.casefold()):
        if unicodedata.combining(char):
            continue
        if "\u0370" <= char <= "\u03ff":
            name = unicodedata.name(char, "")
            folded.append(f" {name.rsplit(' ', 1)[-1].lower()} " if name else char)
        else:
            folded.append(char)
    return " ".join(_NOT_WORD.sub(" ", "".join(folded)).split())


def paper_id(norm_title: str, *, arxiv_id: str | None = None) -> str:
    """The arXiv id when known, else ``t:`` + 16 hex digits of the title's hash."""
    if arxiv_id:
        return arxiv_id
    return "t:" + hashlib.sha256(norm_title.encode("utf-8")).hexdigest()[:16]


# --- word tokens (for ranking) ---------------------------------------------

_TOKEN = re.compile(r"[^\W_]+")
_VOWELS = frozenset("aeiouy")


def _has_vowel(stem: str) -> bool:
    return any(ch in _VOWELS for ch in stem)


def _short_cvc(stem: str) -> bool:
    """Porter's *o: a short stem ending consonant-vowel-consonant, the last not w, x or y (hop, tun)."""
    if len(stem) < 3 or len(stem) > 4:
        return False
    a, b, c = stem[-3], stem[-2], stem[-1]
    return a not in _VOWELS and b in _VOWELS and c not in _VOWELS and c not in "wxy"


@lru_cache(maxsize=131072)
def stem(token: str) -> str:
    """A word's comparable form: Porter's steps 1a and 1b, so inflections meet.

    *models* and *model*, *forecasting* and *forecast*, *pruned*, *pruning* and
    *prune*, *policies* and *policy* stem alike. Words of three letters or less,
    and anything with a digit, stay as they are.
    """
    if len(token) <= 3 or not token.isalpha():
        return token
    # 1a: plurals
    if token.endswith("sses"):
        token = token[:-2]
    elif token.endswith("ies"):
        token = token[:-3] + "y"
    elif token.endswith("s") and not token.endswith(("ss", "us", "is")):
        token = token[:-1]
    # 1b: -ed and -ing, where what is left still has a vowel
    if token.endswith("eed"):
        return token[:-1] if len(token) > 4 else token
    for suffix in ("ing", "ed"):
        stem = token[: -len(suffix)]
        if token.endswith(suffix) and _has_vowel(stem) and len(stem) >= 2:
            if stem.endswith(("at", "bl", "iz")):
                return stem + "e"
            if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                return stem[:-1]
            if _short_cvc(stem):
                return stem + "e"
            return stem
    return token


def tokens(text: str) -> list[str]:
    """Folded word tokens of a text: NFKC, casefolded, split on anything but letters and digits."""
    return [stem(t) for t in _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())]
