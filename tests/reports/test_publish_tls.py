from __future__ import annotations

import email
import email.policy
import json
import ssl

import pytest
from publish_servers import local_email_settings, make_test_ca, running_smtp

from reports.delivery.email_smtp import (
    email_settings_from_airflow_conn,
    email_settings_from_connection,
)
from reports.publish import EmailSettings, RetryPolicy, send_email

AUDITORS = ("audit@example.com",)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def starttls_smtp(tls_files):
    _, cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    with running_smtp(
        tls_context=server_ctx, require_starttls=True, auth=("kaudit", "s3cret")
    ) as server:
        yield server


@pytest.fixture
def plain_smtp():
    with running_smtp() as server:
        yield server


def settings(port: int, **kw) -> EmailSettings:
    return local_email_settings(port, AUDITORS, **kw)


def test_send_email_starttls_with_test_ca_and_login(tmp_path, tls_files, starttls_smtp):
    ca, _, _ = tls_files
    sink, port = starttls_smtp
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4)
    res = send_email(
        settings(port, user="kaudit", password="s3cret", require_tls=True, ca_file=ca),
        "weekly",
        "body text",
        [pdf],
        retry=RetryPolicy(retries=0),
    )
    assert (res.status, res.attempts, res.error) == ("sent", 1, None)
    assert sink.logins == ["kaudit"]
    msg = email.message_from_bytes(sink.envelopes[0].original_content, policy=email.policy.default)
    (part,) = msg.iter_attachments()
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == pdf.read_bytes()


def test_send_email_trusts_test_ca_through_ssl_context(tls_files, starttls_smtp):
    ca, _, _ = tls_files
    sink, port = starttls_smtp
    ctx = ssl.create_default_context(cafile=str(ca))
    res = send_email(settings(port, ssl_context=ctx), "s", "b", retry=RetryPolicy(retries=0))
    assert res.status == "sent" and len(sink.envelopes) == 1


def test_send_email_refuses_untrusted_certificate_without_retry(starttls_smtp):
    sink, port = starttls_smtp
    res = send_email(
        settings(port, user="kaudit", password="s3cret"), "s", "b", retry=RetryPolicy(3, 0.01)
    )
    assert res.status == "failed" and res.attempts == 1
    assert "certificate not trusted" in res.error
    assert sink.envelopes == [] and sink.logins == []


def test_send_email_require_tls_fails_when_starttls_not_offered(plain_smtp):
    sink, port = plain_smtp
    res = send_email(settings(port, require_tls=True), "s", "b", retry=RetryPolicy(3, 0.01))
    assert res.status == "failed" and res.attempts == 1
    assert "does not offer STARTTLS" in res.error
    assert sink.envelopes == []


def test_send_email_never_sends_password_in_clear(plain_smtp):
    sink, port = plain_smtp
    res = send_email(settings(port, user="u", password="p"), "s", "b", retry=RetryPolicy(retries=0))
    assert res.status == "failed" and "unencrypted" in res.error
    assert sink.envelopes == []


def test_send_email_subject_cannot_inject_headers(plain_smtp):
    sink, port = plain_smtp
    res = send_email(
        settings(port), "weekly\r\nBcc: evil@example.com", "b", retry=RetryPolicy(retries=0)
    )
    assert res.status == "sent"
    assert sink.envelopes[0].rcpt_tos == list(AUDITORS)
    msg = email.message_from_bytes(sink.envelopes[0].original_content, policy=email.policy.default)
    assert msg["Subject"] == "weekly Bcc: evil@example.com" and msg["Bcc"] is None


class FakeConn:
    conn_id = "kaudit_smtp"
    host = "smtp.example.com"
    port = None
    login = "kaudit"
    password = "pw"

    def __init__(self, extra):
        self.extra_dejson = extra


def test_email_settings_from_connection_follows_airflow_smtp_semantics():
    s = email_settings_from_connection(
        FakeConn({"from_email": "k@example.com", "recipients": "a@example.com, b@example.com"})
    )
    assert (s.port, s.use_ssl, s.starttls, s.require_tls) == (465, True, False, False)
    assert s.recipients == ("a@example.com", "b@example.com") and s.sender == "k@example.com"
    s = email_settings_from_connection(
        FakeConn({"from_email": "k@example.com", "disable_ssl": "true", "timeout": 7}),
        recipients=["x@example.com"],
    )
    assert (s.port, s.use_ssl, s.starttls, s.require_tls, s.timeout_s) == (
        587,
        False,
        True,
        True,
        7.0,
    )
    assert (s.user, s.password) == ("kaudit", "pw")
    with pytest.raises(ValueError, match="ssl_context"):
        email_settings_from_connection(FakeConn({"ssl_context": "none"}), recipients=["x@y.z"])


@pytest.mark.slow  # importing airflow.sdk takes ~9 s
def test_email_settings_from_airflow_conn_reads_airflow_connection(monkeypatch):
    conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": 2525,
        "login": "kaudit",
        "password": "pw",
        "extra": json.dumps({"from_email": "k@example.com", "disable_ssl": True}),
    }
    monkeypatch.setenv("AIRFLOW_CONN_KAUDIT_SMTP_TEST", json.dumps(conn))
    s = email_settings_from_airflow_conn("kaudit_smtp_test", recipients=["a@example.com"])
    assert (s.host, s.port, s.sender, s.user, s.password) == (
        "127.0.0.1",
        2525,
        "k@example.com",
        "kaudit",
        "pw",
    )
    assert s.starttls and s.require_tls and not s.use_ssl
    with pytest.raises(ValueError, match="kaudit_missing_conn"):
        email_settings_from_airflow_conn("kaudit_missing_conn", recipients=["a@example.com"])
