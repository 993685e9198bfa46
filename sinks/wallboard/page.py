"""The wall display's HTML pages in the chosen language: `lang` and `dir` on `<html>`, and the
settings the script reads (`data-mode`, `data-digits`); a page never carries inline script."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

from sinks.wallboard.config import DIGITS, LANGUAGES

__all__ = ["PageChoice", "render_page"]

STATIC: Final = Path(__file__).resolve().parent / "static"
HTML_TAG: Final = '<html lang="en">'
TITLES: Final = {"ar": "تواصل — لوحة العمليات", "en": "Tawasul — Operations"}


class PageChoice(ValueError):
    """A `lang` or `digits` value the page does not know."""


@cache
def _template(name: str) -> str:
    text = (STATIC / name).read_text(encoding="utf-8")
    if HTML_TAG not in text:
        raise RuntimeError(f"{name} lacks {HTML_TAG}")
    return text


def render_page(name: str, lang: str | None, digits: str | None) -> str:
    """`name` (a file of static/) for `lang` (both, ar, en) and `digits` (latn, arab)."""
    lang = lang or "both"
    digits = digits or "latn"
    if lang not in LANGUAGES:
        raise PageChoice(f"lang must be one of {', '.join(LANGUAGES)}, not {lang!r}")
    if digits not in DIGITS:
        raise PageChoice(f"digits must be one of {', '.join(DIGITS)}, not {digits!r}")
    direction = "rtl" if lang == "ar" else "ltr"
    tag = f'<html lang="{"ar" if lang == "ar" else "en"}" dir="{direction}" data-mode="{lang}" data-digits="{digits}">'
    text = _template(name).replace(HTML_TAG, tag, 1)
    if lang in TITLES:
        start, end = text.index("<title>") + len("<title>"), text.index("</title>")
        text = text[:start] + TITLES[lang] + text[end:]
    return text
