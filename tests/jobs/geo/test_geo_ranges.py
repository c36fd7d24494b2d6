from __future__ import annotations

import ipaddress

import pytest
from pyspark.sql import functions as F

from jobs.geo.ranges import (
    NON_PUBLIC_NETWORKS,
    in_networks_col,
    ip_scope,
    is_public,
    network_prefix,
    with_ip_scope,
)

# ip -> public?  (ipaddress.is_private gets the first three wrong on Python 3.11)
PUBLIC_TABLE = [
    ("100.64.0.1", False),
    ("0.1.2.3", False),
    ("240.0.0.1", False),
    ("8.8.8.8", True),
    ("2001:4860::1", True),
    ("fd00::1", False),
    ("::ffff:10.0.0.1", False),
    ("::ffff:8.8.8.8", True),
    ("10.255.255.255", False),
    ("172.15.255.255", True),
    ("172.16.0.1", False),
    ("172.31.255.255", False),
    ("172.32.0.1", True),
    ("192.168.1.1", False),
    ("127.0.0.1", False),
    ("169.254.169.254", False),
    ("100.63.255.255", True),
    ("100.128.0.0", True),
    ("224.0.0.1", False),
    ("255.255.255.255", False),
    ("192.0.0.8", False),
    ("192.0.2.1", False),
    ("198.18.0.1", False),
    ("198.20.0.1", True),
    ("198.51.100.7", False),
    ("203.0.113.9", False),
    ("::1", False),
    ("::", False),
    ("fe80::1%eth0", False),
    ("ff02::1", False),
    ("2001:db8::1", False),
    ("2001:db9::1", True),
    ("fc00::", False),
    ("fe00::1", True),
    ("::ffff:a00:1", False),
    ("64:ff9b::1.2.3.4", True),
    ("1:2:3:4:5:6:7:8", True),
    ("not-an-ip", False),
    ("99.999.999.999", False),
    ("010.0.0.1", False),
    ("1::2::3", False),
    ("12345::1", False),
    (":::", False),
    ("1:2:3:4:5:6:7:8:9", False),
    ("", False),
    (None, False),
]


@pytest.mark.parametrize(("ip", "public"), PUBLIC_TABLE)
def test_is_public_table(ip, public):
    assert is_public(ip) is public


def test_ip_scope_labels():
    assert [ip_scope(i) for i in ("100.64.0.1", "::ffff:127.0.0.1", "fd12::1", "x", "1.1.1.1")] == [
        "cgnat",
        "loopback",
        "private",
        "invalid",
        "public",
    ]


def test_is_public_differs_from_ipaddress_is_private_where_documented():
    for ip in ("100.64.0.1",):
        assert not ipaddress.ip_address(ip).is_private and not is_public(ip)


def test_network_prefix_is_a_bit_prefix():
    assert network_prefix("10.0.0.0/8") == "4:00001010"
    bits = format(int(ipaddress.ip_address("10.0.2.5")), "032b")
    assert network_prefix("10.0.2.5") == "4:" + bits
    assert network_prefix("::ffff:10.0.0.0/104") == "4:00001010"
    assert network_prefix("fc00::/7") == "6:1111110"
    assert all(network_prefix(c) for c, _ in NON_PUBLIC_NETWORKS)


@pytest.mark.spark
def test_with_ip_scope_is_the_spark_twin_of_ip_scope(spark):
    df = spark.createDataFrame([(ip,) for ip, _ in PUBLIC_TABLE], "ip string")
    rows = (
        with_ip_scope(df, "ip")
        .withColumn("in_ten", in_networks_col(F.col("ip"), ["10.0.0.0/8", "2001:4860::/32"]))
        .collect()
    )
    assert [(r.ip, r.ip_scope) for r in rows] == [(ip, ip_scope(ip)) for ip, _ in PUBLIC_TABLE]
    assert [r.is_public for r in rows] == [p for _, p in PUBLIC_TABLE]
    assert {r.ip for r in rows if r.in_ten} == {
        "10.255.255.255",
        "2001:4860::1",
        "::ffff:10.0.0.1",
        "::ffff:a00:1",
    }
