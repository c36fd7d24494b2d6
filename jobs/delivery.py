"""The config's delivery section as the settings reports.delivery sends with (secrets from env).

One mapping for the weekly report (jobs.pipeline.publish) and the hourly alerts (jobs.alerts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.settings import DeliveryConfig, secret_from_env

if TYPE_CHECKING:
    from reports.delivery.email_smtp import EmailSettings
    from reports.delivery.webhook import WebhookSettings


def email_settings(delivery: DeliveryConfig) -> EmailSettings | None:
    """SMTP settings of the configured auditors' e-mail, or None when none is configured."""
    from reports.delivery.email_smtp import EmailSettings

    e = delivery.email
    if e is None:
        return None
    return EmailSettings(
        host=e.smtp_host,
        port=e.smtp_port,
        sender=e.sender,
        recipients=e.to,
        user=secret_from_env(e.username_env),
        password=secret_from_env(e.password_env),
        starttls=e.starttls != "off",
        require_tls=e.starttls == "require",
    )


def webhook_settings(delivery: DeliveryConfig) -> list[WebhookSettings]:
    """One settings object per configured webhook (generic JSON or DingTalk)."""
    from reports.delivery.webhook import WebhookSettings

    return [
        WebhookSettings(url=w.url, kind=w.format, secret=secret_from_env(w.secret_env))
        for w in delivery.webhooks
    ]
