"""The audit vocabulary kaudit speaks, each word written once.

Levels and stages are the audit.k8s.io API's own (policy spec §1.4, §3.1); verbs are the
apiserver's request verbs grouped as the marts and detections read them; user kinds are how
kaudit classifies an identity. Every other module imports these names instead of restating them.
"""

from __future__ import annotations

LEVEL_NONE = "None"
LEVEL_METADATA = "Metadata"
LEVEL_REQUEST = "Request"
LEVEL_REQUEST_RESPONSE = "RequestResponse"
LEVELS: tuple[str, ...] = (LEVEL_NONE, LEVEL_METADATA, LEVEL_REQUEST, LEVEL_REQUEST_RESPONSE)
# An unknown level string ranks like None (apiserver helpers.go), so "at least" tests stay total.
LEVEL_RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}
# Levels at which the apiserver logs the request body.
BODY_LEVELS: tuple[str, ...] = (LEVEL_REQUEST, LEVEL_REQUEST_RESPONSE)

STAGE_REQUEST_RECEIVED = "RequestReceived"
STAGE_RESPONSE_STARTED = "ResponseStarted"
STAGE_RESPONSE_COMPLETE = "ResponseComplete"
STAGE_PANIC = "Panic"
# The audit API's order (also the order omitStages are reported in).
STAGES: tuple[str, ...] = (
    STAGE_REQUEST_RECEIVED,
    STAGE_RESPONSE_STARTED,
    STAGE_RESPONSE_COMPLETE,
    STAGE_PANIC,
)
# Order of a request's stages: the highest one carries the request's outcome.
STAGE_RANK: dict[str, int] = {
    STAGE_REQUEST_RECEIVED: 0,
    STAGE_RESPONSE_STARTED: 1,
    STAGE_PANIC: 2,
    STAGE_RESPONSE_COMPLETE: 3,
}
STARTED_OR_COMPLETED: tuple[str, ...] = (STAGE_RESPONSE_STARTED, STAGE_RESPONSE_COMPLETE)

READ_VERBS: tuple[str, ...] = ("get", "list", "watch")
WRITE_VERBS: tuple[str, ...] = ("create", "update", "patch", "delete", "deletecollection")
# Verbs whose request carries an object body.
BODY_VERBS: tuple[str, ...] = ("create", "update", "patch")

KIND_HUMAN = "human"
KIND_SERVICE_ACCOUNT = "service_account"
KIND_SYSTEM = "system_component"
KIND_ANONYMOUS = "anonymous"
USER_KINDS: tuple[str, ...] = (KIND_HUMAN, KIND_SERVICE_ACCOUNT, KIND_SYSTEM, KIND_ANONYMOUS)

# The namespace column's value for cluster-scoped objects in the marts.
CLUSTER_SCOPE = "(cluster)"
