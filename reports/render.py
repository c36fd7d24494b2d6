"""HTML (Jinja2, autoescaped) -> PDF/A-3b bytes (WeasyPrint) that can fetch nothing from outside."""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint import HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from reports.i18n import Messages

TEMPLATE_ROOT = Path(__file__).resolve().parent / "templates"


class TemplateOnlyFetcher(URLFetcher):  # type: ignore[misc]
    """Serves files under one folder; any other URL (file, http, data, ...) stops the render.

    ``attempts`` records every URL asked for, so tests can prove nothing else was tried.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(fail_on_errors=True)
        self.root = root.resolve()
        self.attempts: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        """The file at ``url`` if it is a file under the root, else FatalURLFetchingError."""
        self.attempts.append(url)
        parts = urlsplit(url)
        if parts.scheme == "file" and not parts.netloc and not parts.query:
            path = Path(unquote(parts.path)).resolve()
            if path.is_relative_to(self.root) and path.is_file():
                mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(
                    url, body=path.read_bytes(), headers={"Content-Type": mime}
                )
        raise FatalURLFetchingError(f"refused to fetch {url!r}: outside {self.root}")


_COUNTERS = {"\x01": "counter(page)", "\x02": "counter(pages)"}


def _css_string(text: str) -> str:
    """``text`` as a CSS string literal that cannot end the string or the <style> element."""
    escaped = "".join(
        ch if ch.isalnum() or ch in " ,.:;·，、" else f"\\{ord(ch):06x}" for ch in text
    )
    return f'"{escaped}"'


def page_footer_css(messages: Messages) -> str:
    """The footer's CSS ``content`` value from the catalogue's ``footer.page_of`` sentence.

    The page number and count are CSS counters, so the translated sentence is split around
    them; word order (and the closing 页 of Chinese) stays the translator's.
    """
    text = messages("footer.page_of", page="\x01", pages="\x02")
    pieces = re.split("([\x01\x02])", text)
    return " ".join(_COUNTERS.get(p) or _css_string(p) for p in pieces if p)


def environment(template_dir: Path, messages: Messages) -> Environment:
    """Jinja2 with autoescape on and the report language's catalogue installed as ``_``."""
    env = Environment(
        loader=FileSystemLoader(template_dir),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=messages,
        ngettext=lambda s, p, n, **kw: messages(s if n == 1 else p, **kw),
        newstyle=True,
    )
    env.globals["t"] = messages
    return env


def render_html(template_dir: Path, context: dict[str, Any], messages: Messages) -> str:
    """The report's HTML."""
    return environment(template_dir, messages).get_template("report.html.j2").render(context)


def html_to_pdf(
    html: str,
    template_dir: Path,
    attachments: dict[str, bytes],
    stamp: datetime,
    fetcher: TemplateOnlyFetcher | None = None,
) -> bytes:
    """PDF/A-3b bytes with ``attachments`` (name -> bytes) embedded as associated files.

    ``stamp`` dates the attachments (WeasyPrint would use the clock and break reproducibility).
    """
    utc = stamp.astimezone(UTC)
    fetcher = fetcher or TemplateOnlyFetcher(template_dir)
    font_config = FontConfiguration()
    document = HTML(string=html, base_url=str(template_dir) + "/", url_fetcher=fetcher)
    files = [
        Attachment(
            string=data,
            name=name,
            url_fetcher=fetcher,
            relationship="Data",
            created=utc,
            modified=utc,
        )
        for name, data in sorted(attachments.items())
    ]
    pdf = document.write_pdf(
        font_config=font_config, pdf_variant="pdf/a-3b", attachments=files, uncompressed_pdf=False
    )
    assert pdf is not None
    return bytes(pdf)
