"""E-mail over SMTP with the standard library.

STARTTLS when offered (or required), verified TLS only, credentials passed in (from
jobs/settings.py or an Airflow connection), timeouts on every socket operation.
"""

from __future__ import annotations

import mimetypes
import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from reports.delivery.results import ChannelResult, DeliveryError, RetryPolicy, one_line

_ADDRESS = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+$")


@dataclass(frozen=True)
class EmailSettings:
    """Where and how to send e-mail.

    Attributes:
        host: SMTP server name or address.
        port: SMTP port (587 submission with STARTTLS, 465 with ``use_ssl``, 25 relay).
        sender: envelope and ``From`` address.
        recipients: the auditors; every one gets the message.
        user: login name; no AUTH when None.
        password: login password.
        use_ssl: implicit TLS from the first byte (SMTPS, port 465).
        starttls: upgrade with STARTTLS when the server offers it.
        require_tls: fail rather than send in clear when STARTTLS is not offered.
        allow_plaintext_auth: allow AUTH over an unencrypted connection (a local relay only).
        ca_file: extra CA bundle that signs the server's certificate.
        ssl_context: a ready context (wins over ``ca_file``); verification is never disabled.
        timeout_s: limit on connect and on each send/receive.
        local_hostname: name for EHLO; the machine's FQDN when None.
    """

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    use_ssl: bool = False
    starttls: bool = True
    require_tls: bool = False
    allow_plaintext_auth: bool = False
    ca_file: Path | None = None
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    timeout_s: float = 30.0
    local_hostname: str | None = None

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("e-mail: no recipients")
        for addr in (self.sender, *self.recipients):
            if not _ADDRESS.match(addr):
                raise ValueError(f"e-mail: not a plain address: {addr!r}")
        if self.require_tls and not (self.use_ssl or self.starttls):
            raise ValueError("e-mail: require_tls needs use_ssl or starttls")
        if self.timeout_s <= 0:
            raise ValueError("e-mail: timeout_s must be > 0")

    def tls_context(self) -> ssl.SSLContext:
        """The verifying TLS context for this server."""
        if self.ssl_context is not None:
            return self.ssl_context
        return ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )


def build_message(
    settings: EmailSettings, subject: str, body: str, attachments: Sequence[Path] = ()
) -> EmailMessage:
    """A plain-text message to every recipient with ``attachments`` (files) attached."""
    msg = EmailMessage()
    msg["Subject"] = one_line(subject, 200)
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.recipients)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=settings.sender.rsplit("@", 1)[1])
    msg.set_content(body)
    for path in attachments:
        ctype, _ = mimetypes.guess_type(path.name)
        maintype, subtype = (ctype or "application/octet-stream").split("/", 1)
        msg.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
        )
    return msg


def _classify(exc: Exception) -> DeliveryError:
    """Map an smtplib/socket failure to a DeliveryError: 5xx and refused auth are final."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}", retryable=False
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(sorted(exc.recipients))
        return DeliveryError(f"all recipients refused: {refused}", retryable=False)
    if isinstance(exc, smtplib.SMTPResponseException):
        final = 500 <= exc.smtp_code < 600
        return DeliveryError(
            f"server said {exc.smtp_code} {_text(exc.smtp_error)}", retryable=not final
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"TLS certificate not trusted: {exc.verify_message}", retryable=False)
    return DeliveryError(one_line(f"{type(exc).__name__}: {exc}"))


def _text(raw: bytes | str) -> str:
    return one_line(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)


def _send_once(settings: EmailSettings, msg: EmailMessage) -> None:
    where = f"{settings.host}:{settings.port}"
    try:
        client: smtplib.SMTP
        if settings.use_ssl:
            client = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                local_hostname=settings.local_hostname,
                timeout=settings.timeout_s,
                context=settings.tls_context(),
            )
        else:
            client = smtplib.SMTP(
                settings.host,
                settings.port,
                local_hostname=settings.local_hostname,
                timeout=settings.timeout_s,
            )
        with client:
            client.ehlo()
            encrypted = settings.use_ssl
            if not encrypted and settings.starttls and client.has_extn("starttls"):
                client.starttls(context=settings.tls_context())
                client.ehlo()
                encrypted = True
            if settings.require_tls and not encrypted:
                raise DeliveryError(
                    f"{where} does not offer STARTTLS and require_tls is set", retryable=False
                )
            if settings.user is not None:
                if not encrypted and not settings.allow_plaintext_auth:
                    raise DeliveryError(
                        f"{where}: refusing to send the password over an unencrypted connection",
                        retryable=False,
                    )
                client.login(settings.user, settings.password or "")
            refused = client.send_message(
                msg, from_addr=settings.sender, to_addrs=list(settings.recipients)
            )
    except DeliveryError:
        raise
    except (smtplib.SMTPException, OSError) as exc:
        err = _classify(exc)
        raise DeliveryError(f"{where}: {err}", retryable=err.retryable) from exc
    if refused:
        # Not retried: the accepted recipients would get the report twice.
        raise DeliveryError(
            f"{where}: recipients refused: {', '.join(sorted(refused))}", retryable=False
        )


def send_email(
    settings: EmailSettings,
    subject: str,
    body: str,
    attachments: Sequence[Path] = (),
    *,
    retry: RetryPolicy = RetryPolicy(),
    channel: str = "email",
) -> ChannelResult:
    """Send one message to every recipient, retrying transient failures; never raises on them."""
    try:
        msg = build_message(settings, subject, body, attachments)
    except (OSError, ValueError) as exc:
        return ChannelResult(channel, "failed", 0, one_line(f"message not built: {exc}"))
    return retry.run(channel, lambda: _send_once(settings, msg))


def _flag(extra: Mapping[str, Any], key: str) -> bool:
    value = extra.get(key, False)
    return value.strip().lower() in {"1", "true", "yes"} if isinstance(value, str) else bool(value)


def email_settings_from_connection(
    conn: Any,
    *,
    recipients: Sequence[str] | None = None,
    sender: str | None = None,
    ca_file: Path | None = None,
) -> EmailSettings:
    """EmailSettings from an Airflow SMTP connection, read as Airflow's SMTP provider reads it.

    ``extra``: ``from_email``, ``disable_ssl`` (implicit TLS is on unless set), ``disable_tls``
    (STARTTLS, required when on, is used unless set), ``timeout``; and kaudit's ``recipients``
    (a list or comma-separated) when the argument is None. ``ssl_context: none`` is refused:
    certificate verification is never turned off.
    """
    extra: Mapping[str, Any] = conn.extra_dejson
    if str(extra.get("ssl_context", "default")).lower() == "none":
        raise ValueError(f"connection {conn.conn_id}: ssl_context 'none' is not allowed")
    if recipients is None:
        raw = extra.get("recipients", [])
        recipients = raw.split(",") if isinstance(raw, str) else list(raw)
    use_ssl = not _flag(extra, "disable_ssl")
    starttls = not use_ssl and not _flag(extra, "disable_tls")
    sender = sender or extra.get("from_email") or conn.login
    if not conn.host or not sender:
        raise ValueError(f"connection {conn.conn_id}: needs a host and from_email (or login)")
    return EmailSettings(
        host=conn.host,
        port=int(conn.port or (465 if use_ssl else 587)),
        sender=str(sender),
        recipients=tuple(r.strip() for r in recipients if r.strip()),
        user=conn.login or None,
        password=conn.password or None,
        use_ssl=use_ssl,
        starttls=starttls,
        require_tls=starttls,
        ca_file=ca_file,
        timeout_s=float(extra.get("timeout", 30)),
    )


def email_settings_from_airflow_conn(
    conn_id: str,
    *,
    recipients: Sequence[str] | None = None,
    sender: str | None = None,
    ca_file: Path | None = None,
) -> EmailSettings:
    """EmailSettings from the Airflow connection ``conn_id`` (Airflow 3 ``airflow.sdk``).

    Imported lazily so that nothing imports Airflow unless a connection is named.

    Raises:
        ValueError: the connection is missing or incomplete.
    """
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # Airflow's not-found type moved between releases
        raise ValueError(f"Airflow connection {conn_id!r}: {one_line(str(exc))}") from exc
    return email_settings_from_connection(
        conn, recipients=recipients, sender=sender, ca_file=ca_file
    )
