"""Request attributes as ingest puts them in EVENTS (absent -> null), for the policy tables."""

from __future__ import annotations

from typing import Any


def res(
    verb: str,
    resource: str,
    *,
    group: str = "",
    ns: str = "",
    name: str = "",
    sub: str = "",
    query: str = "",
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A resource request; ``user`` adds user_name/user_groups columns."""
    prefix = "/api/v1" if group == "" else f"/apis/{group}/v1"
    uri = prefix + (f"/namespaces/{ns}" if ns and resource != "namespaces" else "")
    uri += f"/{resource}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")
    return {
        **(user or {}),
        "verb": verb,
        "request_uri": uri + (f"?{query}" if query else ""),
        "object_ref_present": True,
        "api_group": group,
        "resource": resource,
        "subresource": sub or None,
        "namespace": ns or None,
        "object_name": name or None,
    }


def nonres(verb: str, uri: str, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """A non-resource request (no objectRef)."""
    return {**(user or {}), "verb": verb, "request_uri": uri, "object_ref_present": False}
