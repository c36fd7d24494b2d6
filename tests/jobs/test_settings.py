from __future__ import annotations

import pytest

from jobs.settings import ConfigError, load_config


def _write(tmp_path, text):
    p = tmp_path / "kaudit.yaml"
    p.write_text(text)
    return p


def test_valid_config_with_defaults(tmp_path):
    cfg = load_config(
        _write(
            tmp_path,
            """
cluster: prod
timezone: Asia/Shanghai
masters:
  - {name: m1, source: "file:///var/log/kubernetes"}
  - {name: m2, source: "file://rel/dir", pattern: "kubernetes*.audit*"}
""",
        )
    )
    assert cfg.cluster == "prod" and cfg.timezone == "Asia/Shanghai"
    assert cfg.masters[0].pattern == "kubernetes*.audit*"
    assert cfg.masters[1].local_path == (tmp_path / "rel/dir").resolve()
    assert cfg.report.system_user_prefixes == ("system:",)


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "cluster: c\nmasters: [{name: a, source: 'file:///x'}]\ntimezon: UTC\n",
            "unknown key 'timezon'",
        ),
        (
            "cluster: c\nmasters: [{name: a, source: 'file:///x', patern: x}]\n",
            "masters[0]: unknown key 'patern'",
        ),
        ("cluster: c\nmasters: [{name: a, source: 'http://x'}]\n", "masters[0].source"),
        ("cluster: c\nmasters: []\n", "masters: required"),
        (
            "cluster: c\ntimezone: Mars/Base\nmasters: [{name: a, source: 'file:///x'}]\n",
            "unknown time zone",
        ),
        (
            "cluster: c\nmasters: [{name: a, source: 'file:///x'}, {name: a, source: 'file:///y'}]\n",
            "duplicate name 'a'",
        ),
        ("cluster: 'bad name'\nmasters: [{name: a, source: 'file:///x'}]\n", "cluster"),
        (
            "cluster: c\nmasters: [{name: a, source: 'file:///x'}]\nreport: {geoip: {country: x}}\n",
            "report.geoip: unknown key 'country'",
        ),
        ("cluster: c\nmasters: [{name: '../a', source: 'file:///x'}]\n", "masters[0].name"),
        ("cluster: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, body, message):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, body))
    assert message in str(err.value)


def test_every_problem_is_reported_at_once(tmp_path):
    body = """
cluster: c
timezon: UTC
masters: [{name: a, source: 'file:///x', patern: x}]
report: {trusted_proxies: [10.0.0.5, not-an-ip], language: fr}
delivery: {gate: maybe, webhooks: [{url: 'ftp://x'}]}
"""
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, body))
    text = str(err.value)
    for expected in (
        "unknown key 'timezon'",
        "unknown key 'patern'",
        "'not-an-ip' is not an IP",
        "report.language: 'fr'",
        "delivery.gate: 'maybe'",
        "delivery.webhooks[0].url",
    ):
        assert expected in text
    assert "6 problems" in text


def test_deeply_nested_yaml_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "[" * 100_000))
    assert "not valid YAML" in str(err.value)
    assert "\n" not in str(err.value)


def test_new_sections_parse(tmp_path, monkeypatch):
    from jobs.settings import secret_from_env

    cfg = load_config(
        _write(
            tmp_path,
            """
cluster: c
spark_master: spark://127.0.0.1:7077
masters: [{name: a, source: 'file:///x'}]
report: {language: zh-CN, trusted_proxies: [10.0.1.0/24]}
delivery:
  gate: warn
  email: {smtp_host: 127.0.0.1, smtp_port: 2525, sender: k@x, to: [a@x], password_env: SMTP_PW}
  webhooks: [{url: 'http://127.0.0.1:9/x', format: dingtalk, secret_env: DT_SECRET}]
""",
        )
    )
    assert cfg.report.language == "zh-CN" and cfg.spark_master == "spark://127.0.0.1:7077"
    assert cfg.delivery.gate == "warn" and cfg.delivery.email.smtp_port == 2525
    assert cfg.delivery.webhooks[0].format == "dingtalk"
    monkeypatch.setenv("DT_SECRET", "s3")
    assert secret_from_env(cfg.delivery.webhooks[0].secret_env) == "s3"


def test_missing_home_is_an_error_naming_it(tmp_path):
    from jobs.settings import HomeError, existing_home

    with pytest.raises(HomeError) as err:
        existing_home(tmp_path / "typo")
    assert str(tmp_path / "typo") in str(err.value)
    (tmp_path / "home" / "custody").mkdir(parents=True)
    assert existing_home(tmp_path / "home") == (tmp_path / "home").resolve()


def test_detection_lists_absent_are_not_configured(tmp_path):
    cfg = load_config(_write(tmp_path, "cluster: c\nmasters: [{name: a, source: 'file:///x'}]\n"))
    assert cfg.detections.allowed_users is None and cfg.detections.allowed_registries is None
    cfg = load_config(
        _write(
            tmp_path,
            """
cluster: c
masters: [{name: a, source: 'file:///x'}]
detections: {allowed_users: [alice, 'group:ops'], allowed_namespaces: [], threat_lists: [tor.txt],
             alert: [secret-read]}
schedule: {collect_ingest: '*/30 * * * *'}
""",
        )
    )
    assert cfg.detections.allowed_users == ("alice", "group:ops")
    assert cfg.detections.allowed_namespaces == ()
    assert cfg.detections.threat_lists == (tmp_path / "tor.txt",)
    assert cfg.schedule.collect_ingest == "*/30 * * * *" and cfg.schedule.weekly_report
