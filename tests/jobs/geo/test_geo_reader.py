from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobs.geo.reader import (
    DBIP_ATTRIBUTION,
    GeoError,
    GeoReader,
    ip_info,
    normalise_asn,
    normalise_city,
)

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "geo"  # MaxMind test databases (MIT or Apache-2.0, see LICENSE-*)
CITY = DATA / "GeoIP2-City-Test.mmdb"
ASN = DATA / "GeoLite2-ASN-Test.mmdb"
REAL = Path(os.environ.get("KAUDIT_GEOIP_DIR", ROOT / ".geoip"))


@pytest.fixture(scope="module")
def reader():
    with GeoReader(CITY, ASN) as r:
        yield r


@pytest.mark.parametrize(
    ("ip", "want"),
    [
        (
            "81.2.69.142",
            {"country": "GB", "region": "England", "city": "London", "asn": None, "org": None},
        ),
        (
            "::ffff:81.2.69.142",
            {"country": "GB", "region": "England", "city": "London", "asn": None, "org": None},
        ),
        (
            "89.160.20.112",
            {
                "country": "SE",
                "region": "Östergötland County",
                "city": "Linköping",
                "asn": 29518,
                "org": "Bredband2 AB",
            },
        ),
        (
            "1.128.0.0",
            {"country": None, "region": None, "city": None, "asn": 1221, "org": "Telstra Pty Ltd"},
        ),
        ("2001:218::1", {"country": "JP", "region": None, "city": None, "asn": None, "org": None}),
        ("10.0.0.1", dict.fromkeys(("country", "region", "city", "asn", "org"))),
        ("not-an-ip", dict.fromkeys(("country", "region", "city", "asn", "org"))),
    ],
)
def test_lookup_normalises_geoip2_city_and_asn(reader, ip, want):
    assert reader.lookup(ip) == want


def test_describe_reports_types_and_build_date(reader):
    info = reader.describe()
    assert info["database"] == "GeoIP2-City + GeoLite2-ASN"
    assert len(info["build_date"]) == 10 and info["build_date"][4] == "-"
    assert "MaxMind" in info["attribution"]


def test_ip_info_classifies_and_only_looks_up_public_ips(reader):
    rows = ip_info(["89.160.20.112", "10.0.0.1", "100.64.0.1", None, "10.0.0.1"], reader)
    assert [(r["ip"], r["ip_scope"], r["is_public"], r["country"]) for r in rows] == [
        ("10.0.0.1", "private", False, None),
        ("100.64.0.1", "cgnat", False, None),
        ("89.160.20.112", "public", True, "SE"),
    ]


def test_from_config_user_paths_must_exist_and_defaults_are_optional(tmp_path):
    with pytest.raises(GeoError, match=r"report\.geoip\.city"):
        GeoReader.from_config(city=tmp_path / "missing.mmdb")
    empty = GeoReader.from_config(default_city=tmp_path / "no.mmdb", default_asn=tmp_path / "no")
    assert empty.lookup("8.8.8.8")["country"] is None
    assert empty.describe()["database"] is None
    mixed = GeoReader.from_config(asn=ASN, default_city=CITY, default_asn=tmp_path / "no")
    assert mixed.lookup("89.160.20.112")["city"] == "Linköping"
    assert mixed.lookup("89.160.20.112")["asn"] == 29518


def test_from_config_rejects_a_file_that_is_not_a_database(tmp_path):
    bogus = tmp_path / "bogus.mmdb"
    bogus.write_bytes(b"not a maxmind db")
    with pytest.raises(GeoError):
        GeoReader.from_config(city=bogus)


def test_normalise_flat_schemas():
    ipinfo = {"country_code": "US", "asn": "AS15169", "as_name": "Google LLC"}
    assert normalise_city(ipinfo) == {
        "country": "US",
        "region": None,
        "city": None,
        "asn": 15169,
        "org": "Google LLC",
    }
    flat = {"country_code": "CN", "state1": "Zhejiang", "city": "Hangzhou"}
    assert normalise_city(flat)["region"] == "Zhejiang"
    assert normalise_asn({"autonomous_system_number": 37963, "isp": "Alibaba"}) == {
        "asn": 37963,
        "org": "Alibaba",
    }
    assert normalise_city(None) == {} and normalise_asn("x") == {}


@pytest.mark.skipif(
    not (REAL / "dbip-city-lite.mmdb").is_file(),
    reason=f"DB-IP Lite files not fetched into {REAL} (run `python -m "
    "jobs.geo.fetch`, which `make install` does)",
)
def test_real_dbip_lite_databases():
    with GeoReader(REAL / "dbip-city-lite.mmdb", REAL / "dbip-asn-lite.mmdb") as r:
        assert r.lookup("8.8.8.8") == {
            "country": "US",
            "region": "California",
            "city": "Mountain View",
            "asn": 15169,
            "org": "Google LLC",
        }
        hz = r.lookup("2400:3200::1")
        assert (hz["country"], hz["region"], hz["city"], hz["asn"]) == (
            "CN",
            "Zhejiang",
            "Hangzhou",
            37963,
        )
        assert r.lookup("10.0.0.1")["country"] is None
        info = r.describe()
        assert info["attribution"] == DBIP_ATTRIBUTION
        assert info["database"].startswith("DBIP-City-Lite + DBIP-ASN-Lite")
        assert info["build_date"] == "2026-09-01"
