"""The report's message catalogues (gettext .po, compiled in memory) and number/date formats.

Keys are symbolic (``s3.by_verb``) so that English is a translation like any other: every
string of the report lives in ``reports/locale/<lang>.po`` and nowhere else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.core import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"en": "en", "zh-CN": "zh_CN"}


@lru_cache(maxsize=4)
def load_translations(language: str) -> Translations:
    """The compiled catalogue of ``language`` (``en`` or ``zh-CN``)."""
    code = LANGUAGES.get(language)
    if code is None:
        raise ValueError(f"unsupported report language {language!r}; use one of {list(LANGUAGES)}")
    with (LOCALE_DIR / f"{code}.po").open("rb") as fh:
        catalog = read_po(fh, locale=code)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


@dataclass(frozen=True)
class Messages:
    """Lookup and formatting in one language; passed to templates and charts."""

    language: str
    timezone: str

    @property
    def locale(self) -> Locale:
        """Babel locale of the report language."""
        return Locale.parse(LANGUAGES[self.language])

    def __call__(self, key: str, **params: Any) -> str:
        """The message ``key``, with ``%(name)s`` parameters substituted."""
        text = load_translations(self.language).gettext(key)
        return text % params if params else text

    def has(self, key: str) -> bool:
        """True when the catalogue translates ``key``."""
        return load_translations(self.language).gettext(key) != key

    def num(self, value: float | int | None) -> str:
        """A count or amount in the report language's number format."""
        if value is None:
            return self("n_a")
        return str(format_decimal(value, locale=self.locale))

    def pct(self, value: float | None) -> str:
        """A ratio (0..1) as a percentage."""
        if value is None:
            return self("n_a")
        return str(format_percent(value, format="#,##0.0%", locale=self.locale))

    def when(self, value: datetime | str | None) -> str:
        """A timestamp in the report's time zone."""
        if value is None:
            return self("n_a")
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return str(
            format_datetime(
                value, "yyyy-MM-dd HH:mm:ss", tzinfo=ZoneInfo(self.timezone), locale=self.locale
            )
        )
