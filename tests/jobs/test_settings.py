from __future__ import annotations

import pytest

from jobs.settings import ConfigError, load_config


def _write(tmp_path, text):
    p = tmp_path / "kaudit.yaml"
    p.write_text(text)
    return p


def test_valid_config_with_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, """
cluster: prod
timezone: Asia/Shanghai
masters:
  - {name: m1, source: "file:///var/log/kubernetes"}
  - {name: m2, source: "file://rel/dir", pattern: "kubernetes*.audit*"}
"""))
    assert cfg.cluster == "prod" and cfg.timezone == "Asia/Shanghai"
    assert cfg.masters[0].pattern == "kubernetes*.audit*"
    assert cfg.masters[1].local_path == (tmp_path / "rel/dir").resolve()
    assert cfg.report.system_user_prefixes == ("system:",)


@pytest.mark.parametrize("body, message", [
    ("cluster: c\nmasters: [{name: a, source: 'file:///x'}]\ntimezon: UTC\n", "unknown key 'timezon'"),
    ("cluster: c\nmasters: [{name: a, source: 'file:///x', patern: x}]\n", "masters[0]: unknown key 'patern'"),
    ("cluster: c\nmasters: [{name: a, source: 'http://x'}]\n", "masters[0].source"),
    ("cluster: c\nmasters: []\n", "masters: required"),
    ("cluster: c\ntimezone: Mars/Base\nmasters: [{name: a, source: 'file:///x'}]\n", "unknown time zone"),
    ("cluster: c\nmasters: [{name: a, source: 'file:///x'}, {name: a, source: 'file:///y'}]\n", "duplicate name 'a'"),
    ("cluster: 'bad name'\nmasters: [{name: a, source: 'file:///x'}]\n", "cluster"),
    ("cluster: c\nmasters: [{name: a, source: 'file:///x'}]\nreport: {geoip: {country: x}}\n", "report.geoip: unknown key 'country'"),
    ("cluster: c\nmasters: [{name: '../a', source: 'file:///x'}]\n", "masters[0].name"),
    ("cluster: [\n", "not valid YAML"),
])
def test_bad_config_names_the_key(tmp_path, body, message):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, body))
    assert message in str(err.value)
