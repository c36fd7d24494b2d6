"""Public or not: an explicit range table, as Python and as Spark expressions.

``ipaddress.is_private`` is not used: on Python 3.11 it calls 0/8 and 240/4 private but leaves
CGNAT (100.64/10) public. The table below is the single source of truth; ``ip_scope`` (Python,
for the driver) and ``ip_scope_col`` (Spark, for distinct-IP tables) both read it. IPv4-mapped
IPv6 addresses (``::ffff:a.b.c.d``) are classified by their inner IPv4 address.

In Spark an address becomes a bit string tagged with its family (``"4:0000101000..."``), so a
CIDR test is a prefix test: no UDF, no Python per row.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

SCOPE_PUBLIC = "public"
SCOPE_INVALID = "invalid"

# (network, scope label); first match wins, so more specific ranges come first.
NON_PUBLIC_NETWORKS: tuple[tuple[str, str], ...] = (
    ("255.255.255.255/32", "broadcast"),
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link_local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link_local"),
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "documentation"),
)

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_RE = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
_V4_TAIL_RE = rf":({_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET})$"
_MAPPED_PREFIX = "0" * 80 + "1" * 16
_HEX_GROUP_RE = "^[0-9a-f]{1,4}$"


def parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address, with IPv4-mapped IPv6 unwrapped and any zone id dropped; None if invalid."""
    if not text:
        return None
    try:
        addr = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def ip_scope(text: str | None) -> str:
    """``public``, ``invalid`` or the label of the first non-public range that holds the IP."""
    addr = parse_ip(text)
    if addr is None:
        return SCOPE_INVALID
    for cidr, label in NON_PUBLIC_NETWORKS:
        net = ipaddress.ip_network(cidr)
        if addr.version == net.version and addr in net:
            return label
    return SCOPE_PUBLIC


def is_public(text: str | None) -> bool:
    """True only for a valid address outside every range of NON_PUBLIC_NETWORKS."""
    return ip_scope(text) == SCOPE_PUBLIC


def network_prefix(cidr: str) -> str:
    """A CIDR (or a bare IP) as the tagged bit prefix that ``ip_bits_col`` values start with."""
    net = ipaddress.ip_network(cidr.strip(), strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        inner = net.network_address.ipv4_mapped
        net = ipaddress.ip_network(f"{inner}/{max(net.prefixlen - 96, 0)}", strict=False)
    width = net.max_prefixlen
    bits = format(int(net.network_address), f"0{width}b")[: net.prefixlen]
    return f"{net.version}:{bits}"


def let(value: Column, body: Callable[[Column], Column]) -> Column:
    """Evaluate ``value`` once and pass it to ``body`` (a one-element ``transform``).

    Catalyst expands a Python Column DAG into a tree, so an intermediate used n times is
    copied n times; nesting such reuse overflows Java's 64 KB method limit in codegen.
    """
    return F.get(F.transform(F.array(value), body), 0)


def _v4_bits(s: Column) -> Column:
    octets = F.split(s, r"\.")
    return F.concat_ws("", *[F.lpad(F.conv(F.get(octets, i), 10, 2), 8, "0") for i in range(4)])


def _hexed(s: Column) -> Column:
    """An embedded dotted IPv4 tail (``::ffff:1.2.3.4``) rewritten as two hex groups."""

    def rewrite(tail: Column) -> Column:
        t = F.split(tail, r"\.")
        pair = [
            F.lower(F.hex(F.get(t, i).try_cast("int") * 256 + F.get(t, i + 1).try_cast("int")))
            for i in (0, 2)
        ]
        head = s.substr(F.lit(1), F.length(s) - F.length(tail))
        return F.when(tail != "", F.concat(head, pair[0], F.lit(":"), pair[1])).otherwise(s)

    return let(F.regexp_extract(s, _V4_TAIL_RE, 1), rewrite)


def _groups(hexed: Column) -> Column:
    """struct(ok, groups): the 8 expanded hex groups and whether the text was well formed."""

    def side(h: Column, i: int) -> Column:
        return F.when(
            F.coalesce(F.get(h, i), F.lit("")) == "", F.array().cast("array<string>")
        ).otherwise(F.split(F.get(h, i), ":", -1))

    def expand(h: Column) -> Column:
        compressed = F.size(h) == 2
        n = F.when(compressed, F.size(side(h, 0)) + F.size(side(h, 1))).otherwise(
            F.size(side(h, 0))
        )
        fill = F.array_repeat(F.lit("0"), F.greatest(F.lit(8) - n, F.lit(0)))
        groups = F.when(compressed, F.concat(side(h, 0), fill, side(h, 1))).otherwise(side(h, 0))
        count_ok = F.when(compressed, n <= 7).otherwise((F.size(h) == 1) & (n == 8))
        return F.struct(count_ok.alias("ok"), groups.alias("groups"))

    return let(F.split(hexed, "::", -1), expand)


def _v6_bits(s: Column) -> Column:
    def from_groups(g: Column) -> Column:
        ok = g["ok"] & F.forall(g["groups"], lambda x: x.rlike(_HEX_GROUP_RE))
        raw = F.concat_ws(
            "",
            F.transform(
                g["groups"],
                lambda x: F.when(x.rlike(_HEX_GROUP_RE), F.lpad(F.conv(x, 16, 2), 16, "0")),
            ),
        )
        return F.when(F.coalesce(ok, F.lit(False)), raw)

    def tag(raw: Column) -> Column:
        mapped = F.concat(F.lit("4:"), F.substring(raw, 97, 32))
        return F.when(raw.startswith(_MAPPED_PREFIX), mapped).otherwise(F.concat(F.lit("6:"), raw))

    def from_hexed(h: Column) -> Column:
        return F.when(h.rlike("^[0-9a-f:]+$"), let(let(_groups(h), from_groups), tag))

    return let(_hexed(s), from_hexed)


def ip_bits_col(ip: Column) -> Column:
    """Tagged bit string of an address (``4:`` + 32 bits or ``6:`` + 128 bits); null if invalid.

    IPv4-mapped IPv6 is returned as its IPv4 form; a zone id (``%eth0``) is ignored.
    """

    def bits(s: Column) -> Column:
        return F.when(s.rlike(_V4_RE), F.concat(F.lit("4:"), _v4_bits(s))).when(
            s.contains(":"), _v6_bits(s)
        )

    return let(F.lower(F.trim(F.regexp_replace(ip, "%.*$", ""))), bits)


def in_networks_col(ip: Column, cidrs: Iterable[str]) -> Column:
    """True when the address lies in one of the CIDRs (bare IPs allowed); False if invalid."""
    prefixes = sorted({network_prefix(c) for c in cidrs})
    if not prefixes:
        return F.lit(False)

    def test(bits: Column) -> Column:
        hit = F.lit(False)
        for prefix in prefixes:
            hit = hit | bits.startswith(prefix)
        return F.coalesce(hit, F.lit(False))

    return let(ip_bits_col(ip), test)


def ip_scope_col(ip: Column, networks: Sequence[tuple[str, str]] = NON_PUBLIC_NETWORKS) -> Column:
    """Spark twin of ``ip_scope``: ``public``, ``invalid`` or the first matching range label."""

    def scope(bits: Column) -> Column:
        out = F.when(bits.isNull(), F.lit(SCOPE_INVALID))
        for cidr, label in networks:
            out = out.when(bits.startswith(network_prefix(cidr)), F.lit(label))
        return out.otherwise(F.lit(SCOPE_PUBLIC))

    return let(ip_bits_col(ip), scope)


def with_ip_scope(df: DataFrame, ip_col: str = "ip") -> DataFrame:
    """Add ``ip_scope`` (string) and ``is_public`` (boolean) for the addresses in ``ip_col``.

    Meant for a distinct-IP table: join the result back to events rather than running the
    parse on every event.
    """
    return df.withColumn("ip_scope", ip_scope_col(F.col(ip_col))).withColumn(
        "is_public", F.col("ip_scope") == SCOPE_PUBLIC
    )
