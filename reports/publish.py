"""Publish a rendered weekly report.

Copy it to the report directory (always, atomically), then e-mail it to the auditors and post a
short summary to the webhooks, unless the validation gate holds it back. Every channel ends as a
ChannelResult: nothing fails silently and no delivery problem escapes as a traceback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jobs.digest import sha256_file
from jobs.errors import EXIT_DELIVERY, EXIT_OK, EXIT_VALIDATION
from reports.delivery.digest import VALIDATION_FAILED, build_report_digest
from reports.delivery.email_smtp import (
    EmailSettings,
    email_settings_from_airflow_conn,
    send_email,
)
from reports.delivery.results import ChannelResult, RetryPolicy, one_line
from reports.delivery.webhook import WebhookSettings, post_webhook

__all__ = [
    "VALIDATION_FAILED",
    "ChannelResult",
    "EmailSettings",
    "PublishResult",
    "RetryPolicy",
    "WebhookSettings",
    "email_settings_from_airflow_conn",
    "post_webhook",
    "publish_report",
    "send_email",
]

Gate = Literal["block", "warn"]
REPORT_DIR_CHANNEL = "report-dir"


@dataclass(frozen=True)
class PublishResult:
    """The outcome of publishing one report.

    Attributes:
        pdf: the PDF in the report directory (None when the copy failed).
        manifest: manifest.json in the report directory (None when the copy failed).
        pdf_sha256: SHA-256 of the PDF, as announced to every channel.
        validation_ok: whether the report passed validation.
        gate: the validation gate applied.
        channels: one result per channel, the report directory first.
    """

    pdf: Path | None
    manifest: Path | None
    pdf_sha256: str
    validation_ok: bool
    gate: Gate
    channels: tuple[ChannelResult, ...]

    @property
    def blocked(self) -> bool:
        """True when the gate kept the report from the auditors."""
        return not self.validation_ok and self.gate == "block"

    @property
    def failed(self) -> tuple[ChannelResult, ...]:
        """The channels that could not deliver."""
        return tuple(c for c in self.channels if c.status == "failed")

    @property
    def exit_code(self) -> int:
        """``EXIT_DELIVERY`` when a channel failed, ``EXIT_VALIDATION`` when blocked, else 0."""
        if self.failed:
            return EXIT_DELIVERY
        return EXIT_VALIDATION if self.blocked else EXIT_OK

    def lines(self) -> list[str]:
        """Human-readable lines for the run's output, one per channel."""
        head = f"validation: {'passed' if self.validation_ok else VALIDATION_FAILED}"
        if not self.validation_ok:
            head += f" (gate: {self.gate})"
        return [head, *(c.describe() for c in self.channels)]


def copy_atomic(src: Path, dest_dir: Path) -> Path:
    """Copy ``src`` into ``dest_dir`` under its own name, atomically.

    A reader sees the old file or the whole new one, never a part; a no-op when ``src`` already
    is that file.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if dest.exists() and dest.samefile(src):
        return dest
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{src.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # not every filesystem can fsync a directory
        dir_fd = os.open(dest_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return dest


def publish_report(
    pdf: Path,
    manifest: Path,
    summary: Mapping[str, Any],
    *,
    report_dir: Path,
    email: EmailSettings | None,
    webhooks: list[WebhookSettings],
    validation_ok: bool,
    gate: Gate = "block",
    retries: int = 3,
    backoff_s: float = 1.0,
    detection_info: Mapping[str, tuple[str, str]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishResult:
    """Copy the report to ``report_dir``, then deliver it unless the validation gate blocks it.

    Args:
        pdf: the rendered report.
        manifest: its manifest.json, attached next to the PDF in the e-mail.
        summary: summary.json of the week (cluster, week, figures, detections, users).
        report_dir: where the report is published whatever else happens.
        email: SMTP settings, or None for no e-mail.
        webhooks: endpoints that get the short summary.
        validation_ok: whether the report passed data validation.
        gate: for a report that failed validation, ``block`` sends nothing to auditors,
            ``warn`` sends it marked VALIDATION FAILED in subject and summary.
        retries: further attempts per channel after a transient failure.
        backoff_s: first pause between attempts; doubled each time (capped).
        detection_info: detection id -> (severity, title), to rank and name top findings.
        sleep: the pause function (tests pass a fake).

    Returns:
        One result per channel; ``exit_code`` gives the command's exit status.
    """
    if gate not in ("block", "warn"):
        raise ValueError(f"gate must be 'block' or 'warn', not {gate!r}")
    retry = RetryPolicy(retries, backoff_s, sleep)
    sha = sha256_file(pdf)
    published_pdf: Path | None = None
    published_manifest: Path | None = None
    try:
        published_pdf = copy_atomic(pdf, report_dir)
        published_manifest = copy_atomic(manifest, report_dir)
        results = [ChannelResult(REPORT_DIR_CHANNEL, "sent", 1)]
    except OSError as exc:
        results = [
            ChannelResult(REPORT_DIR_CHANNEL, "failed", 1, one_line(f"copy to {report_dir}: {exc}"))
        ]
    digest = build_report_digest(
        summary,
        validation_ok=validation_ok,
        pdf_path=published_pdf or pdf,
        pdf_sha256=sha,
        detection_info=detection_info,
    )
    channels = (["email"] if email is not None else []) + [w.channel for w in webhooks]
    if not validation_ok and gate == "block":
        why = "validation failed and the gate is 'block': not sent to auditors"
        results += [ChannelResult(name, "blocked", 0, why) for name in channels]
    else:
        if email is not None:
            results.append(
                send_email(
                    email,
                    digest.subject,
                    digest.text,
                    [pdf, manifest],
                    retry=retry,
                )
            )
        for hook in webhooks:
            results.append(
                post_webhook(
                    hook,
                    digest.subject,
                    digest.markdown,
                    digest.payload,
                    retry=retry,
                )
            )
    return PublishResult(
        published_pdf, published_manifest, sha, validation_ok, gate, tuple(results)
    )
