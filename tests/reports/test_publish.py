from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import urllib.parse
from pathlib import Path

import pytest
from publish_servers import HttpReceiver, Reply, closed_port, local_email_settings, running_smtp

from jobs.errors import EXIT_DELIVERY, EXIT_OK, EXIT_VALIDATION
from reports.delivery.results import DeliveryError, with_retries
from reports.delivery.webhook import escape_markdown, post_webhook
from reports.publish import (
    EmailSettings,
    RetryPolicy,
    WebhookSettings,
    copy_atomic,
    publish_report,
)

HOSTILE_IMG = '<img src="file:///etc/passwd">'
HOSTILE_LINK = "[click](http://evil.example/x)"
CHINESE = "张伟"
SECRET = "SECtest0123456789"
AUDITORS = ("auditor1@example.com", "auditor2@example.com")
INFO = {
    "exec": ("high", "Command executed in a container (pods/exec)"),
    "secret-read": ("medium", "Secret read by a human identity"),
}


def summary() -> dict:
    return {
        "cluster": "prod-sh",
        "week": "2026-W47",
        "timezone": "Asia/Shanghai",
        "window": {"start": "2026-11-16T00:00:00+08:00", "end": "2026-11-23T00:00:00+08:00"},
        "requests_total": 1234,
        "events_total": 1300,
        "requests_by_status_class": {"2xx": 1200, "4xx": 30, "5xx": 4},
        "detections": {"exec": 2, "secret-read": 7, "csr": 0, "configmap-credentials": None},
        "detections_status": {
            "exec": "ok",
            "secret-read": "ok",
            "csr": "ok",
            "configmap-credentials": "not_observable",
        },
        "source_ips": [
            {"ip": "8.8.8.8", "is_public": True},
            {"ip": "10.0.0.1", "is_public": False},
        ],
        "users": [
            {"user": HOSTILE_IMG, "kind": "human", "requests": 50},
            {"user": HOSTILE_LINK + "\n# owned", "kind": "human", "requests": 40},
            {"user": CHINESE, "kind": "human", "requests": 30},
            {"user": "system:kube-scheduler", "kind": "system_component", "requests": 900},
        ],
    }


@pytest.fixture(scope="module")
def pdf_file(tmp_path_factory) -> Path:
    from weasyprint import HTML

    out = tmp_path_factory.mktemp("render") / "report.pdf"
    out.write_bytes(HTML(string="<html><body><h1>kaudit test</h1></body></html>").write_pdf())
    return out


@pytest.fixture(scope="module")
def manifest_file(pdf_file) -> Path:
    out = pdf_file.parent / "manifest.json"
    out.write_text(json.dumps({"pdf_sha256": hashlib.sha256(pdf_file.read_bytes()).hexdigest()}))
    return out


@pytest.fixture
def smtp():
    with running_smtp() as server:
        yield server


@pytest.fixture
def receivers():
    made: list[HttpReceiver] = []

    def make(reply: Reply | None = None) -> HttpReceiver:
        made.append(HttpReceiver(reply))
        return made[-1]

    yield make
    for r in made:
        r.close()


def email_settings(port: int, **kw) -> EmailSettings:
    return local_email_settings(port, AUDITORS, **kw)


def publish(pdf, manifest, report_dir, **kw):
    defaults = {
        "email": None,
        "webhooks": [],
        "validation_ok": True,
        "gate": "block",
        "retries": 0,
        "backoff_s": 0.01,
    }
    return publish_report(pdf, manifest, summary(), report_dir=report_dir, **{**defaults, **kw})


def parse(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.original_content, policy=email.policy.default)


def attachments(msg) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in msg.iter_attachments()}


def test_publish_report_delivers_email_json_and_signed_dingtalk(
    tmp_path, pdf_file, manifest_file, smtp, receivers
):
    sink, port = smtp
    generic = receivers()
    ding = receivers(Reply(body=b'{"errcode":0,"errmsg":"ok"}'))
    hooks = [
        WebhookSettings(url=generic.url("/generic"), name="ops", timeout_s=5),
        WebhookSettings(
            url=ding.url("/robot/send?access_token=tok123"),
            kind="dingtalk",
            secret=SECRET,
            name="ding",
            timeout_s=5,
        ),
    ]
    report_dir = tmp_path / "reports" / "prod-sh" / "2026-W47"
    result = publish_report(
        pdf_file,
        manifest_file,
        summary(),
        report_dir=report_dir,
        email=email_settings(port),
        webhooks=hooks,
        validation_ok=True,
        gate="block",
        retries=2,
        backoff_s=0.01,
        detection_info=INFO,
    )

    assert [(c.channel, c.status, c.attempts) for c in result.channels] == [
        ("report-dir", "sent", 1),
        ("email", "sent", 1),
        ("webhook:ops", "sent", 1),
        ("webhook:ding", "sent", 1),
    ]
    assert result.exit_code == EXIT_OK and not result.failed and not result.blocked
    sha = hashlib.sha256(pdf_file.read_bytes()).hexdigest()
    assert result.pdf_sha256 == sha
    assert (report_dir / "report.pdf").read_bytes() == pdf_file.read_bytes()
    assert (report_dir / "manifest.json").read_bytes() == manifest_file.read_bytes()
    assert not list(report_dir.glob(".*.tmp"))

    # E-mail: both auditors, subject, the PDF and manifest byte-identical.
    assert len(sink.envelopes) == 1
    envelope = sink.envelopes[0]
    assert envelope.mail_from == "kaudit@example.com"
    assert sorted(envelope.rcpt_tos) == sorted(AUDITORS)
    msg = parse(envelope)
    assert msg["Subject"] == "kaudit weekly audit report: prod-sh 2026-W47"
    files = attachments(msg)
    assert files["report.pdf"] == pdf_file.read_bytes()
    assert files["manifest.json"] == manifest_file.read_bytes()
    body = msg.get_body(("plain",)).get_content()
    assert sha in body and "Validation: passed" in body and CHINESE in body

    # Generic JSON: the summary's figures, findings, validation, PDF path and hash.
    (req,) = generic.requests
    assert req.path == "/generic"
    assert req.headers["Content-Type"].startswith("application/json")
    doc = req.json()
    assert doc["cluster"] == "prod-sh" and doc["week"] == "2026-W47"
    assert doc["figures"]["requests_total"] == 1234
    assert doc["figures"]["failed_requests"] == 34
    assert doc["figures"]["public_ips"] == 1
    assert doc["figures"]["detections_fired"] == 2
    assert doc["figures"]["detections_not_observable"] == 1
    assert [f["detection"] for f in doc["top_findings"]] == ["exec", "secret-read"]
    assert doc["validation"] == {"ok": True, "status": "passed"}
    assert doc["pdf"] == {"path": str(report_dir / "report.pdf"), "sha256": sha}
    # JSON carries hostile names as data, exactly.
    assert [u["user"] for u in doc["top_users"]] == [
        HOSTILE_IMG,
        HOSTILE_LINK + "\n# owned",
        CHINESE,
    ]

    # DingTalk: markdown message, signature recomputed from the secret and timestamp.
    (dreq,) = ding.requests
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(dreq.path).query)
    assert query["access_token"] == ["tok123"]
    ts = query["timestamp"][0]
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [expected]
    dbody = dreq.json()
    assert dbody["msgtype"] == "markdown"
    assert dbody["markdown"]["title"] == "kaudit weekly audit report: prod-sh 2026-W47"
    text = dbody["markdown"]["text"]
    assert "Requests: 1234" in text and sha in text and CHINESE in text
    assert "\\[high\\] Command executed in a container \\(pods/exec\\): 2" in text


def test_dingtalk_markdown_neutralises_hostile_user_names(
    tmp_path, pdf_file, manifest_file, receivers
):
    ding = receivers(Reply(body=b'{"errcode":0,"errmsg":"ok"}'))
    hook = WebhookSettings(url=ding.url(), kind="dingtalk", timeout_s=5)
    result = publish(
        pdf_file,
        manifest_file,
        tmp_path,
        webhooks=[hook],
        retries=0,
    )
    assert result.exit_code == EXIT_OK
    text = ding.requests[0].json()["markdown"]["text"]
    users_line = next(line for line in text.split("\n") if "Top users" in line)
    assert '&lt;img src="file\\[:\\]///etc/passwd"&gt;' in users_line
    assert "\\[click\\]\\(http\\[:\\]//evil.example/x\\) # owned" in users_line
    assert CHINESE in users_line
    # Nothing an attacker wrote opens a tag, a link, an image or a new line.
    assert "<img" not in text and "](" not in text and "\n# owned" not in text
    assert "http://" not in text and "file://" not in text


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("![x](http://a/b.png)", "\\!\\[x\\]\\(http\\[:\\]//a/b.png\\)"),
        ("`rm -rf` <b>&", "\\`rm -rf\\` &lt;b&gt;&amp;"),
        ("a\\[b", "a\\\\\\[b"),
        ("line1\r\nline2\u2028x", "line1 line2 x"),
        ("用户 ok", "用户 ok"),
    ],
)
def test_escape_markdown_neutralises(raw, escaped):
    assert escape_markdown(raw) == escaped


def test_escape_markdown_caps_length():
    assert escape_markdown("a" * 500, max_len=10) == "a" * 9 + "…"


def test_down_smtp_and_webhooks_fail_after_retries_while_others_deliver(
    tmp_path, pdf_file, manifest_file, receivers
):
    good = receivers()
    broken = receivers(Reply(status=500, body=b"boom"))
    ding_refuses = receivers(Reply(body=b'{"errcode":310000,"errmsg":"sign not match"}'))
    hooks = [
        WebhookSettings(url=f"http://127.0.0.1:{closed_port()}/hook", name="down", timeout_s=2),
        WebhookSettings(url=broken.url(), name="err500", timeout_s=2),
        WebhookSettings(
            url=ding_refuses.url("/robot/send?access_token=SECRETTOKEN"),
            kind="dingtalk",
            name="ding",
            timeout_s=2,
        ),
        WebhookSettings(url=good.url(), name="good", timeout_s=2),
    ]
    result = publish(
        pdf_file,
        manifest_file,
        tmp_path / "out",
        email=email_settings(closed_port()),
        webhooks=hooks,
        retries=2,
    )
    by = {c.channel: c for c in result.channels}
    assert by["report-dir"].status == "sent"
    assert by["email"].status == "failed" and by["email"].attempts == 3
    assert "ConnectionRefusedError" in by["email"].error
    assert by["webhook:down"].status == "failed" and by["webhook:down"].attempts == 3
    assert "ConnectionRefused" in by["webhook:down"].error
    assert by["webhook:err500"].status == "failed" and by["webhook:err500"].attempts == 3
    assert "HTTP 500" in by["webhook:err500"].error
    assert len(broken.requests) == 3
    # A robot's refusal is final: no retry, and the token never shows in the error.
    assert by["webhook:ding"].status == "failed" and by["webhook:ding"].attempts == 1
    assert "errcode 310000" in by["webhook:ding"].error
    assert "SECRETTOKEN" not in by["webhook:ding"].error
    assert by["webhook:good"].status == "sent" and len(good.requests) == 1
    assert {c.channel for c in result.failed} == {
        "email",
        "webhook:down",
        "webhook:err500",
        "webhook:ding",
    }
    assert result.exit_code == EXIT_DELIVERY
    out = "\n".join(result.lines())
    assert "email: FAILED after 3 attempts" in out and "webhook:good: sent" in out


def test_validation_gate_block_sends_nothing_and_says_so(
    tmp_path, pdf_file, manifest_file, smtp, receivers
):
    sink, port = smtp
    hook = receivers()
    result = publish(
        pdf_file,
        manifest_file,
        tmp_path,
        email=email_settings(port),
        webhooks=[WebhookSettings(url=hook.url(), name="ops")],
        validation_ok=False,
        retries=0,
    )
    assert sink.envelopes == [] and hook.requests == []
    assert (tmp_path / "report.pdf").read_bytes() == pdf_file.read_bytes()
    assert result.blocked and result.exit_code == EXIT_VALIDATION
    assert [(c.channel, c.status) for c in result.channels] == [
        ("report-dir", "sent"),
        ("email", "blocked"),
        ("webhook:ops", "blocked"),
    ]
    assert all("validation failed" in (c.error or "") for c in result.channels[1:])
    assert "validation: VALIDATION FAILED (gate: block)" in result.lines()


def test_validation_gate_warn_marks_subject_and_summary(
    tmp_path, pdf_file, manifest_file, smtp, receivers
):
    sink, port = smtp
    hook = receivers()
    ding = receivers(Reply(body=b'{"errcode":0}'))
    result = publish(
        pdf_file,
        manifest_file,
        tmp_path,
        email=email_settings(port),
        webhooks=[
            WebhookSettings(url=hook.url(), name="ops"),
            WebhookSettings(url=ding.url(), kind="dingtalk", name="ding"),
        ],
        validation_ok=False,
        gate="warn",
        retries=0,
    )
    assert result.exit_code == EXIT_OK and not result.blocked
    msg = parse(sink.envelopes[0])
    assert msg["Subject"].startswith("[VALIDATION FAILED] kaudit weekly audit report")
    assert "Validation: VALIDATION FAILED" in msg.get_body(("plain",)).get_content()
    assert attachments(msg)["report.pdf"] == pdf_file.read_bytes()
    doc = hook.requests[0].json()
    assert doc["validation"] == {"ok": False, "status": "VALIDATION FAILED"}
    assert doc["title"].startswith("[VALIDATION FAILED]")
    md = ding.requests[0].json()["markdown"]
    assert md["title"].startswith("[VALIDATION FAILED]")
    assert "**VALIDATION FAILED**" in md["text"]


def test_webhook_redirect_to_other_host_not_followed(tmp_path, pdf_file, manifest_file, receivers):
    elsewhere = receivers()
    bouncer = receivers(
        Reply(
            status=307,
            headers={"Location": elsewhere.url("/steal").replace("127.0.0.1", "localhost")},
        )
    )
    result = publish(
        pdf_file,
        manifest_file,
        tmp_path,
        webhooks=[WebhookSettings(url=bouncer.url(), name="b")],
        retries=2,
    )
    (_, hook) = result.channels
    assert hook.status == "failed" and hook.attempts == 1
    assert "redirect" in hook.error and "not followed" in hook.error
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    ("code", "status", "paths"),
    [
        # Same origin, body kept: followed.
        (307, "sent", ["/old", "/moved"]),
        # 303 would turn the POST into a GET without its body: refused, not retried.
        (303, "failed", ["/old"]),
    ],
)
def test_webhook_same_origin_redirect(receivers, code, status, paths):
    target = receivers()
    target.routes["/old"] = Reply(status=code, headers={"Location": "/moved"})
    hook = WebhookSettings(url=target.url("/old"), name="t")
    res = post_webhook(hook, "t", "x", {"k": 1}, retry=RetryPolicy(2, 0.01))
    assert res.status == status and res.attempts == 1
    assert [r.path for r in target.requests] == paths
    if status == "sent":
        assert target.requests[1].json() == {"k": 1, "title": "t", "text": "x"}
    else:
        assert f"HTTP {code}" in res.error


def test_with_retries_backoff_is_exponential_and_bounded():
    pauses: list[float] = []
    calls = 0

    def fail():
        nonlocal calls
        calls += 1
        raise DeliveryError("down")

    res = with_retries("c", fail, retries=9, backoff_s=1.0, sleep=pauses.append)
    assert res.status == "failed" and res.attempts == 10 and calls == 10
    assert pauses == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_with_retries_stops_on_final_error_and_lets_bugs_through():
    res = with_retries(
        "c",
        lambda: (_ for _ in ()).throw(DeliveryError("no", retryable=False)),
        retries=5,
        backoff_s=0,
        sleep=lambda s: None,
    )
    assert (res.status, res.attempts, res.error) == ("failed", 1, "no")
    with pytest.raises(ZeroDivisionError):
        with_retries("c", lambda: 1 / 0, retries=1, backoff_s=0)


def test_copy_atomic_same_file_is_noop_and_replaces_old(tmp_path):
    src = tmp_path / "a.pdf"
    src.write_bytes(b"new")
    assert copy_atomic(src, tmp_path) == src and src.read_bytes() == b"new"
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.pdf").write_bytes(b"old")
    assert copy_atomic(src, out).read_bytes() == b"new"
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf"]


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="http"):
        WebhookSettings(url="file:///etc/passwd")
    with pytest.raises(ValueError, match="DingTalk"):
        WebhookSettings(url="http://x/", secret="s")
    with pytest.raises(ValueError, match="plain address"):
        EmailSettings(host="h", port=25, sender="a@b", recipients=("x@y\r\nBcc: evil@z",))
    with pytest.raises(ValueError, match="no recipients"):
        EmailSettings(host="h", port=25, sender="a@b", recipients=())
