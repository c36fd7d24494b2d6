"""configmap-credentials: credentials in a ConfigMap body, by key name and by value shape.

All Spark built-ins over the raw request body text (no UDF). The entries of ``data`` (create,
update, strategic/merge patch) and the ``/data/<key>`` operations of a JSON patch are read as
(key, value) pairs; inside each value, ``key=value`` / ``key: value`` / ``"key": "value"`` pairs
(properties files, INI files, a service account JSON) are read the same way.

A key names a credential when, lower-cased and split into words (``-``, ``.``, ``_``, spaces
and camelCase boundaries all separate words), its LAST word or words are a credential noun:
``db_password``, ``aws-secret-access-key``, ``dbPassword``, ``alibaba_cloud_access_key_secret``.
A qualifier after the noun says the value is something else: ``password_policy: strict``,
``password_file``, ``token_ttl`` and ``tokenizer``, ``keyboard``, ``passwordless`` do not
match. The value must be meaningful (not empty, not a boolean, not a ``${VAR}`` reference).

A value is a credential whatever its key when it has a known secret shape: AWS access key ids
(``AKIA``/``ASIA``...), Alibaba Cloud AccessKey ids (``LTAI``), Azure storage connection
strings (``AccountKey=``, ``SharedAccessKey=``), database URLs with a password
(``scheme://user:pass@host``), PEM private key blocks, a service account JSON's
``private_key``, JWTs, GitHub and Slack tokens. A PEM certificate (``kube-root-ca.crt``) is not
a credential.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

_NOUNS = (
    "password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "api_?key",
    "access_?key(_?id)?", "secret_?(access_)?key", "private_?key", "client_?secret",
    "account_?key", "access_?key_?secret", "accesskeysecret", "accesskeyid",
    "connection_?string", "credentials?",
)  # fmt: skip
CREDENTIAL_KEY_RE = r"(^|_)(" + "|".join(_NOUNS) + r")$"
# Values that say a setting is on or off, or point elsewhere, are not secrets.
_PLACEHOLDER_VALUE_RE = r"(?i)^(|true|false|yes|no|on|off|none|null|\*+|\$\{.*\}|\{\{.*\}\})$"
CREDENTIAL_VALUE_RE = (
    r"(?<![A-Z0-9])(AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"
    r"|(?<![A-Za-z0-9])LTAI[A-Za-z0-9]{12,20}(?![A-Za-z0-9])"
    r"|(?i:AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{20,}={0,2}"
    r"|[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@\"]+:(?!\$\{|\{\{)[^/\s@\"]+@[^/\s\"]+"
    r"|-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----"
    r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
    r"|(?<![A-Za-z0-9])(gh[pousr]_[A-Za-z0-9]{36}|xox[baprs]-[A-Za-z0-9-]{10,})"
)
# key = value pairs inside a value (properties, INI, env files, JSON text).
_INNER_PAIR_RE = r"[\"']?([A-Za-z][A-Za-z0-9_.\-]*)[\"']?\s*[=:]\s*[\"']?([^\s\"',;]*)"
_ENTRY = "array<struct<key:string,value:string>>"
_PATCH_OPS = "array<struct<op:string,path:string,value:string>>"


def normalise_key(key: Column) -> Column:
    """Lower-case words joined by ``_``: camelCase, ``-``, ``.`` and spaces all split words."""
    camel = F.regexp_replace(key, r"([a-z0-9])([A-Z])", "$1_$2")
    return F.lower(F.regexp_replace(camel, r"[\s.\-_]+", "_"))


def credential_key(key: Column) -> Column:
    """The key, normalised, ends with a credential noun."""
    return F.coalesce(normalise_key(key).rlike(CREDENTIAL_KEY_RE), F.lit(False))


def meaningful(value: Column) -> Column:
    """A value that could be a secret (not empty, a boolean or a variable reference)."""
    return F.coalesce(~F.trim(value).rlike(_PLACEHOLDER_VALUE_RE), F.lit(False))


def credential_value(value: Column) -> Column:
    """The value has the shape of a known secret."""
    return F.coalesce(value.rlike(CREDENTIAL_VALUE_RE), F.lit(False))


def _inner_pairs_hit(value: Column) -> Column:
    keys = F.regexp_extract_all(F.coalesce(value, F.lit("")), F.lit(_INNER_PAIR_RE), 1)
    values = F.regexp_extract_all(F.coalesce(value, F.lit("")), F.lit(_INNER_PAIR_RE), 2)
    pairs = F.arrays_zip(keys.alias("k"), values.alias("v"))
    return F.exists(pairs, lambda p: credential_key(p["k"]) & meaningful(p["v"]))


def _entry_hit(entry: Column) -> Column:
    key, value = entry["key"], entry["value"]
    return (
        (credential_key(key) & meaningful(value))
        | credential_value(value)
        | _inner_pairs_hit(value)
    )


def configmap_entries(body: Column) -> Column:
    """(key, value) of ``data`` of a ConfigMap body or of a JSON patch's ``/data/...`` ops."""
    data = F.from_json(F.get_json_object(body, "$.data"), "map<string,string>")
    from_data = F.coalesce(F.map_entries(data), F.array().cast(_ENTRY))
    ops = F.from_json(F.when(F.trim(body).startswith("["), body), _PATCH_OPS)
    from_patch = F.transform(
        F.filter(
            F.coalesce(ops, F.array().cast(_PATCH_OPS)), lambda o: o["path"].startswith("/data")
        ),
        lambda o: F.struct(
            F.regexp_replace(
                F.regexp_replace(F.regexp_replace(o["path"], r"^/data/?", ""), "~1", "/"), "~0", "~"
            ).alias("key"),
            o["value"].alias("value"),
        ),
    )
    return F.concat(from_data, from_patch)


def configmap_has_credentials(body: Column) -> Column:
    """The ConfigMap body stores a credential (by key name or value shape); false if no body."""
    return F.coalesce(
        F.exists(configmap_entries(body), _entry_hit) | credential_value(body), F.lit(False)
    )
