"""JSON fragments of an audit event as kube-apiserver writes them.

Statuses, objectRefs, request URIs, authorization annotations and object templates, each
pre-serialized with :func:`jobs.synth.engine.go_json` so that the hot loop only joins strings.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from jobs.synth.engine import go_json, sorted_map

ALLOW_EMPTY = '{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}'
FORBID = '{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}'
PSA_KEY = "pod-security.kubernetes.io/enforce-policy"
HOLE = "@@"


def status_json(
    code: int, reason: str = "", message: str = "", details: dict[str, str] | None = None
) -> str:
    """A responseStatus; success statuses carry the code only.

    Args:
        code: HTTP code.
        reason: metav1.StatusReason of a failure ("" for success).
        message: the failure message.
        details: metav1.StatusDetails of a failure.

    Returns:
        The JSON text.
    """
    if not reason:
        return f'{{"metadata":{{}},"code":{code}}}'
    d: dict[str, Any] = {"metadata": {}, "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        d["details"] = details
    d["code"] = code
    return go_json(d)


def _status_object(code: int, reason: str, message: str, details: dict[str, str]) -> str:
    return go_json(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": code,
        }
    )


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def status_details(name: str, resource: str, group: str) -> dict[str, str]:
    """metav1.StatusDetails of a failure about one object (or a resource, without name).

    Args:
        name: object name ("" for none).
        resource: resource (Kubernetes puts it in ``kind``).
        group: API group.

    Returns:
        The details mapping.
    """
    d = {"name": name} if name else {}
    if group:
        d["group"] = group
    d["kind"] = resource
    return d


def object_failure_status(code: int, reason: str, resource: str, group: str, name: str) -> str:
    """A failure about one named object: 404 NotFound or 409 AlreadyExists.

    Args:
        code: HTTP code.
        reason: ``NotFound`` or ``AlreadyExists``.
        resource: resource.
        group: API group.
        name: object name.

    Returns:
        The JSON text.
    """
    outcome = "not found" if reason == "NotFound" else "already exists"
    message = f'{_qualified(resource, group)} "{name}" {outcome}'
    return status_json(code, reason, message, status_details(name, resource, group))


def conflict(resource: str, group: str, name: str) -> tuple[str, str]:
    """A 409 optimistic-concurrency conflict.

    Args:
        resource: resource.
        group: API group.
        name: object name.

    Returns:
        The responseStatus and the Status object kube-apiserver returns as responseObject.
    """
    message = (
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": the object '
        "has been modified; please apply your changes to the latest version and try again"
    )
    details = status_details(name, resource, group)
    return (
        status_json(409, "Conflict", message, details),
        _status_object(409, "Conflict", message, details),
    )


def forbidden_status(
    user: str, verb: str, resource: str, group: str, namespace: str, name: str = ""
) -> str:
    """A 403 responseStatus for a resource request, worded like the RBAC authorizer.

    Args:
        user: the username denied.
        verb: the request verb.
        resource: resource.
        group: API group.
        namespace: namespace ("" for cluster scope).
        name: object name ("" for a collection).

    Returns:
        The JSON text.
    """
    subject = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" {scope}'
    )
    return status_json(403, "Forbidden", message, status_details(name, resource, group))


def forbidden_path_status(user: str, path: str) -> str:
    """A 403 responseStatus for a non-resource URL.

    Args:
        user: the username denied.
        path: the URL path.

    Returns:
        The JSON text.
    """
    return status_json(403, "Forbidden", f'forbidden: User "{user}" cannot get path "{path}"', {})


def uri_json(path: str, query: str = "") -> str:
    """The requestURI as a JSON string (the query joined with ``?`` and HTML-escaped like Go).

    Args:
        path: URL path.
        query: the raw query ("" for none).

    Returns:
        The JSON string.
    """
    return go_json(f"{path}?{query}" if query else path)


def exec_uri(namespace: str, pod: str, container: str, command: list[str], tty: bool) -> str:
    """The URI kubectl exec sends (command words URL-encoded, one ``command=`` each).

    Args:
        namespace: pod namespace.
        pod: pod name.
        container: container name.
        command: the command words.
        tty: ``-t`` given (else stderr is streamed).

    Returns:
        The request URI.
    """
    query = "&".join(f"command={quote(word, safe='')}" for word in command)
    query += f"&container={container}&stdin=true&stdout=true"
    query += "&tty=true" if tty else "&stderr=true"
    return f"/api/v1/namespaces/{namespace}/pods/{pod}/exec?{query}"


def object_ref_json(
    resource: str,
    namespace: str = "",
    name: str = "",
    group: str = "",
    version: str = "v1",
    subresource: str = "",
    uid: str = "",
    resource_version: str = "",
) -> str:
    """An objectRef in audit v1 field order; empty fields are omitted.

    Args:
        resource: resource.
        namespace: namespace.
        name: object name.
        group: API group.
        version: API version.
        subresource: subresource.
        uid: object uid.
        resource_version: the object's resourceVersion.

    Returns:
        The JSON text.
    """
    d: dict[str, str] = {"resource": resource}
    if namespace:
        d["namespace"] = namespace
    if name:
        d["name"] = name
    if uid:
        d["uid"] = uid
    if group:
        d["apiGroup"] = group
    d["apiVersion"] = version
    if resource_version:
        d["resourceVersion"] = resource_version
    if subresource:
        d["subresource"] = subresource
    return go_json(d)


def object_ref_from(fields: dict[str, str]) -> str:
    """An objectRef from a mapping with audit field names (as written in the YAML tables).

    Args:
        fields: ``resource`` and optionally ``namespace``, ``name``, ``apiGroup``,
            ``subresource``.

    Returns:
        The JSON text.
    """
    return object_ref_json(
        fields.get("resource", ""),
        fields.get("namespace", ""),
        fields.get("name", ""),
        fields.get("apiGroup", ""),
        subresource=fields.get("subresource", ""),
    )


def template(obj: Any) -> str:
    """Pre-serialize an object whose string values may hold ``@@name@@`` holes.

    Args:
        obj: the object; a hole is filled by ``template(obj) % {"name": value}``.

    Returns:
        A ``%``-format string (literal ``%`` doubled).
    """
    text = go_json(obj).replace("%", "%%")
    out, i = [], 0
    while True:
        start = text.find(HOLE, i)
        if start < 0:
            out.append(text[i:])
            return "".join(out)
        end = text.index(HOLE, start + 2)
        out.append(text[i:start])
        out.append("%(" + text[start + 2 : end] + ")s")
        i = end + 2


def rbac_reason(kind: str, binding: str, role: str, subject_kind: str, subject: str) -> str:
    """The RBAC authorizer's allow reason.

    Args:
        kind: ``ClusterRoleBinding`` or ``RoleBinding``.
        binding: binding name (``name/namespace`` for a RoleBinding).
        role: the ClusterRole.
        subject_kind: ``User``, ``Group`` or ``ServiceAccount``.
        subject: the subject (``name/namespace`` for a service account).

    Returns:
        The reason text.
    """
    return (
        f'RBAC: allowed by {kind} "{binding}" of ClusterRole "{role}" to {subject_kind} "{subject}"'
    )


def allow_annotations(reason: str, extra: dict[str, str] | None = None) -> str:
    """Annotations of an allowed request (Go map: keys sorted).

    Args:
        reason: the authorizer's reason.
        extra: further annotations (admission's, for example).

    Returns:
        The JSON text.
    """
    d = {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": reason}
    if extra:
        d.update(extra)
    return go_json(sorted_map(d))
