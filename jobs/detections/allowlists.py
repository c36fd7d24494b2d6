"""The cluster's own allow-lists (``detections`` in the config): users, registries, namespaces.

A list left out makes its detection "not configured" (``configured``); these
predicates are only built for a configured list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.config import DetectionsConfig
from jobs.detections.predicates import human, ok, on, sub, verb
from jobs.detections.windows import found
from jobs.vocab import KIND_SYSTEM

if TYPE_CHECKING:
    from jobs.detections.model import Detection

GROUP_PREFIX = "group:"
DOCKER_HUB = "docker.io/"
# Every "image": "..." of a pod or template body (containers, initContainers, ephemeral ones).
_IMAGE_RE = r'"image"\s*:\s*"([^"]+)"'


def users_configured(config: DetectionsConfig) -> bool:
    """allowed_users is given."""
    return config.allowed_users is not None


def registries_configured(config: DetectionsConfig) -> bool:
    """allowed_registries is given."""
    return config.allowed_registries is not None


def namespaces_configured(config: DetectionsConfig) -> bool:
    """allowed_namespaces is given."""
    return config.allowed_namespaces is not None


def disallowed_user(config: DetectionsConfig) -> Column:
    """A person acting who is neither an allowed user nor in an allowed group."""
    entries = config.allowed_users or ()
    users = [e for e in entries if not e.startswith(GROUP_PREFIX)]
    groups = [e.removeprefix(GROUP_PREFIX) for e in entries if e.startswith(GROUP_PREFIX)]
    allowed = F.col("user_name").isin(*users) | F.col("attributed_user").isin(*users)
    if groups:
        in_group = F.arrays_overlap(
            F.coalesce(F.col("user_groups"), F.array().cast("array<string>")),
            F.array(*[F.lit(g) for g in groups]),
        )
        allowed = allowed | in_group
    return human() & ~F.coalesce(allowed, F.lit(False))


def disallowed_users(req_df: DataFrame, det: Detection, config: DetectionsConfig) -> DataFrame:
    """Every request of a person outside the allowed users and groups, keyed by the identity."""
    key = F.concat(F.lit("user:"), F.coalesce(F.col("attributed_user"), F.lit("-")))
    return found(req_df.filter(disallowed_user(config)), det, key)


def normalise_image_col(image: Column) -> Column:
    """An image reference with its registry spelled out (``nginx`` -> ``docker.io/library/nginx``).

    The first path part is a registry only when it has a ``.`` or ``:`` or is ``localhost``
    (the container runtimes' rule); otherwise the image is on Docker Hub.
    """
    first = F.substring_index(image, "/", 1)
    has_registry = image.contains("/") & (
        first.contains(".") | first.contains(":") | (first == "localhost")
    )
    hub = F.when(image.contains("/"), F.concat(F.lit(DOCKER_HUB), image)).otherwise(
        F.concat(F.lit(DOCKER_HUB + "library/"), image)
    )
    return F.lower(F.when(has_registry, image).otherwise(hub))


def _registry_allowed(image: Column, registries: Sequence[str]) -> Column:
    hit = F.lit(False)
    for entry in registries:
        prefix = entry.strip().lower().rstrip("/")
        hit = hit | (image == prefix) | image.startswith(prefix + "/")
        hit = hit | image.startswith(prefix + ":") | image.startswith(prefix + "@")
    return hit


def images_col() -> Column:
    """The images a pod or template body names, normalised (empty when no body)."""
    raw = F.regexp_extract_all(F.coalesce(F.col("request_object"), F.lit("")), F.lit(_IMAGE_RE), 1)
    return F.array_distinct(F.transform(raw, normalise_image_col))


def disallowed_images_col(config: DetectionsConfig) -> Column:
    """The body's images outside the allowed registries."""
    registries = config.allowed_registries or ()
    return F.filter(images_col(), lambda i: ~_registry_allowed(i, registries))


def disallowed_image(config: DetectionsConfig) -> Column:
    """A pod or template written with an image outside the allowed registries."""
    return F.size(disallowed_images_col(config)) > 0


def _pattern(entry: str) -> str:
    """An allowed name or shell pattern (``*``, ``?``) as an anchored Java regex."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in entry)
    return "^" + "".join(parts) + "$"


def disallowed_namespace(config: DetectionsConfig) -> Column:
    """A namespace created (not by the control plane) with a name no allowed entry matches."""
    name = F.coalesce(
        F.nullif(F.col("object_name"), F.lit("")),
        F.get_json_object("request_object", "$.metadata.name"),
        F.col("response_name"),
    )
    allowed = F.lit(False)
    for entry in config.allowed_namespaces or ():
        allowed = allowed | name.rlike(_pattern(entry))
    return (
        on("", "namespaces")
        & sub(None)
        & verb("create")
        & ok()
        & (F.col("user_kind") != KIND_SYSTEM)
        & ~F.coalesce(allowed, F.lit(False))
    )
