"""One hourly alert run: find the run's alerts, send each channel what it has not had yet.

Every configured webhook (generic JSON or DingTalk) and, when configured, the e-mail
recipients get one digest of the alerts new to them. A channel's alert keys are recorded only
once it has accepted the digest, so a failed channel gets them on the retry and the others
nothing twice. Nothing new: nothing is sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobs.alerts.evaluate import Alert, find_alerts
from jobs.alerts.sent import read_sent, record_sent, sent_lock
from jobs.errors import EXIT_DELIVERY, KauditError
from jobs.settings import Config, Layout

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from reports.delivery.results import ChannelResult, RetryPolicy


class AlertDeliveryError(KauditError):
    """Some channel did not accept its digest; the task fails so that Airflow retries it."""

    exit_code = EXIT_DELIVERY


@dataclass(frozen=True)
class Channel:
    """One destination of the digest, and its stable id in the sent ledger."""

    id: str
    send: Any  # (Digest, RetryPolicy) -> ChannelResult


def channels(config: Config) -> list[Channel]:
    """The config's webhooks and e-mail as channels (secrets read from the environment)."""
    from jobs.delivery import email_settings, webhook_settings
    from reports.delivery.email_smtp import send_email
    from reports.delivery.webhook import post_webhook

    out = []
    for settings in webhook_settings(config.delivery):
        # the id hashes the whole URL: DingTalk robots differ only by their token
        ident = "webhook:" + hashlib.sha256(settings.url.encode()).hexdigest()[:16]
        out.append(Channel(ident, lambda d, r, s=settings: post_webhook(
            s, d.subject, d.markdown, d.payload, retry=r)))  # fmt: skip
    email = email_settings(config.delivery)
    if email is not None:
        to = ",".join(sorted(email.recipients))
        out.append(Channel("email:" + to, lambda d, r, s=email: send_email(
            s, d.subject, d.text, retry=r)))  # fmt: skip
    return out


def deliver(
    config: Config, layout: Layout, run_id: str, alerts: list[Alert], retry: RetryPolicy
) -> list[ChannelResult]:
    """Send each channel the alerts it has not had; record what it accepted."""
    from jobs.alerts.digest import build_alert_digest

    results = []
    with sent_lock(layout):
        sent = read_sent(layout)
        for channel in channels(config):
            new = [a for a in alerts if (channel.id, a.key) not in sent]
            if not new:
                continue
            result = channel.send(build_alert_digest(config.cluster, run_id, new), retry)
            if result.status == "sent":
                record_sent(layout, channel.id, [a.key for a in new], run_id)
            results.append(result)
    return results


def run_alerts(
    spark: SparkSession,
    config: Config,
    layout: Layout,
    run_id: str | None,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Evaluate and deliver the alerts of ingest run ``run_id`` (None: nothing was ingested).

    Raises:
        AlertDeliveryError: a channel did not accept its digest (the others are recorded).
    """
    from reports.delivery.results import RetryPolicy

    if run_id is None:
        return {"cluster": config.cluster, "run_id": None, "alerts": 0, "channels": []}
    alerts = find_alerts(spark, config, layout, run_id)
    results = deliver(config, layout, run_id, alerts, retry or RetryPolicy(config.delivery.retries))
    outcome = {
        "cluster": config.cluster,
        "run_id": run_id,
        "alerts": len(alerts),
        "channels": [{"channel": r.channel, "status": r.status, "error": r.error} for r in results],
    }
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise AlertDeliveryError(
            "alert digest not delivered: " + "; ".join(f"{r.channel}: {r.error}" for r in failed)
        )
    return outcome
