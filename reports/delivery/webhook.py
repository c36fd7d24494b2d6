"""Webhook delivery: a generic JSON POST, or the DingTalk custom robot's markdown message.

DingTalk's signed-secret option, stdlib urllib with timeouts, no redirect to another origin, and
robot tokens kept out of error text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reports.delivery.results import ChannelResult, DeliveryError, RetryPolicy, one_line

WebhookKind = Literal["json", "dingtalk"]

_MAX_RESPONSE = 64 * 1024
_MAX_REDIRECTS = 3
# DingTalk's "sending too fast" code: the only robot error that waiting can fix.
_DINGTALK_RATE_LIMITED = 130101
# Markdown punctuation that opens links, images, code or raw HTML; the backslash first so that
# escapes the attacker wrote cannot cancel ours.
_MD_SPECIAL = re.compile(r"([\\`\[\]()!])")


@dataclass(frozen=True)
class WebhookSettings:
    """One webhook endpoint.

    Attributes:
        url: http(s) endpoint; for DingTalk the robot URL with its ``access_token``.
        kind: ``json`` (generic) or ``dingtalk`` (robot markdown message).
        secret: DingTalk signing secret (``SEC...``); the URL is signed when set.
        name: label in results; the host when empty.
        timeout_s: limit on connect and on each read.
        ca_file: extra CA bundle for https.
        ssl_context: a ready context (wins over ``ca_file``); verification is never disabled.
    """

    url: str
    kind: WebhookKind = "json"
    secret: str | None = field(default=None, repr=False)
    name: str = ""
    timeout_s: float = 10.0
    ca_file: Path | None = None
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook: not an http(s) URL: {redact_url(self.url)}")
        if self.kind not in ("json", "dingtalk"):
            raise ValueError(f"webhook: unknown kind {self.kind!r}")
        if self.secret is not None and self.kind != "dingtalk":
            raise ValueError("webhook: a signing secret is a DingTalk option")
        if self.timeout_s <= 0:
            raise ValueError("webhook: timeout_s must be > 0")

    @property
    def channel(self) -> str:
        """Channel label for results."""
        return f"webhook:{self.name or urllib.parse.urlsplit(self.url).hostname}"


def redact_url(url: str) -> str:
    """``url`` without query, fragment or user info: robot tokens live there."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def escape_markdown(text: str, max_len: int = 200) -> str:
    """Event-derived ``text`` made inert in DingTalk markdown.

    One line; no link, image, code span or HTML; no auto-linked URL.
    """
    flat = one_line(text, max_len)
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    flat = _MD_SPECIAL.sub(r"\\\1", flat)
    return flat.replace("://", "\\[:\\]//")


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: base64(HMAC-SHA256(secret, timestamp + LF + secret)), URL-encoded."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """``url`` with ``timestamp`` and ``sign`` appended to its query."""
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{sep}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def webhook_body(
    settings: WebhookSettings, title: str, markdown_text: str, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON document posted: DingTalk's markdown message, or ``payload`` with title/text."""
    if settings.kind == "dingtalk":
        return {
            "msgtype": "markdown",
            "markdown": {"title": one_line(title, 100), "text": markdown_text},
        }
    return {**payload, "title": one_line(title, 200), "text": markdown_text}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand every 3xx back as an HTTPError.

    The caller decides: a POST body is never silently turned into a GET or sent elsewhere.
    """

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _check_response(settings: WebhookSettings, status: int, raw: bytes) -> None:
    if settings.kind != "dingtalk":
        return
    try:
        reply = json.loads(raw.decode("utf-8", "replace"))
        errcode = int(reply.get("errcode", -1))
    except (ValueError, AttributeError, TypeError) as exc:
        raise DeliveryError(f"HTTP {status} with a reply that is not DingTalk's JSON") from exc
    if errcode != 0:
        raise DeliveryError(
            f"DingTalk errcode {errcode}: {one_line(str(reply.get('errmsg', '')))}",
            retryable=errcode == _DINGTALK_RATE_LIMITED,
        )


def _post_once(settings: WebhookSettings, data: bytes, now_ms: Callable[[], int]) -> None:
    url = settings.url
    if settings.secret is not None:
        url = dingtalk_signed_url(url, settings.secret, now_ms())
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if url.startswith("https:"):
        ctx = settings.ssl_context or ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file is not None else None
        )
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "kaudit"}
    for _ in range(_MAX_REDIRECTS + 1):
        where = redact_url(url)
        # Scheme checked in WebhookSettings and _same_origin: http(s) only.
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
        try:
            with opener.open(request, timeout=settings.timeout_s) as response:
                _check_response(settings, response.status, response.read(_MAX_RESPONSE))
                return
        except urllib.error.HTTPError as exc:
            with exc:
                if 300 <= exc.code < 400:
                    target = urllib.parse.urljoin(url, exc.headers.get("Location", ""))
                    if exc.code in (307, 308) and _same_origin(url, target):
                        url = target
                        continue
                    raise DeliveryError(
                        f"{where}: HTTP {exc.code} redirect to {redact_url(target)} not followed",
                        retryable=False,
                    ) from exc
                transient = exc.code >= 500 or exc.code in (408, 429)
                raise DeliveryError(
                    f"{where}: HTTP {exc.code} {one_line(exc.reason or '')}", retryable=transient
                ) from exc
        except DeliveryError as exc:
            raise DeliveryError(f"{where}: {exc}", retryable=exc.retryable) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise DeliveryError(one_line(f"{where}: {type(reason).__name__}: {reason}")) from exc
    raise DeliveryError(
        f"{redact_url(settings.url)}: more than {_MAX_REDIRECTS} redirects", retryable=False
    )


def post_webhook(
    settings: WebhookSettings,
    title: str,
    markdown_text: str,
    payload: Mapping[str, Any],
    *,
    retry: RetryPolicy = RetryPolicy(),
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> ChannelResult:
    """POST one message, retrying transient failures; never raises on them.

    ``markdown_text`` must already be safe (see :func:`escape_markdown`); ``payload`` goes to
    the generic JSON body as data, where ``json.dumps`` escapes it.
    """
    # ASCII JSON: a lone surrogate in event text cannot make the encoding fail.
    data = json.dumps(
        webhook_body(settings, title, markdown_text, payload), ensure_ascii=True, sort_keys=True
    ).encode("ascii")
    return retry.run(settings.channel, lambda: _post_once(settings, data, now_ms))
