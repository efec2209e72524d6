"""Simplified Chinese and English, from Babel catalogs (``app/locale/<locale>/LC_MESSAGES/messages.po``).

The English text is the message id; the page language comes from the ``lang`` cookie (set by the
switch), else the browser's Accept-Language, else Chinese.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

from babel import Locale
from babel.messages.pofile import read_po

from app.paths import LOCALES

LANGUAGES = ("zh", "en")
CATALOG_DIRS = {"zh": "zh_Hans", "en": "en"}
DEFAULT = "zh"


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    directory = CATALOG_DIRS.get(lang)
    if directory is None:
        return {}
    with open(LOCALES / directory / "LC_MESSAGES" / "messages.po", "rb") as fh:
        cat = read_po(fh, locale=directory)
    return {m.id: m.string for m in cat if m.id and m.string and not m.fuzzy}


def gettext(lang: str) -> Callable[..., str]:
    table = catalog(lang)

    def _(message: str, **values: object) -> str:
        text = table.get(message, message)
        return text % values if values else text

    return _


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie  # type: ignore[return-value]
    preferred: list[tuple[float, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            preferred.append((quality - index * 1e-6, tag.strip()))
    tags = [tag.replace("-", "_") for _, tag in sorted(preferred, reverse=True)]
    if not tags:
        return DEFAULT
    found = Locale.negotiate(tags, ["zh", "en"], sep="_")
    return str(found.language) if found else "en"
