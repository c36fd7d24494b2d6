"""One suite per weekly mart: counts non-negative, rates in [0, 1], keys unique, vocabularies.

Each ``build_<mart>_suite()`` reads only the mart's own rows. Totals that must agree across
marts (or with the lake) are in :mod:`expectations.consistency`.
"""

from __future__ import annotations

from collections.abc import Callable

import great_expectations as gx
from great_expectations.expectations.expectation import Expectation

from expectations._checks import (
    at_most,
    between,
    flatten,
    in_set,
    non_negative,
    not_null,
    rates,
    unique,
)
from jobs.detections.model import STATUS_NOT_CONFIGURED, STATUS_NOT_OBSERVABLE, STATUS_OK

OVERVIEW_DIMENSIONS = ("total", "day", "hour", "verb", "status_class", "user_kind")
DETECTION_SEVERITIES = ("critical", "high", "medium", "low")
# the statuses the detections mart can hold, as jobs.detections writes them
DETECTION_STATUSES = (STATUS_OK, STATUS_NOT_OBSERVABLE, STATUS_NOT_CONFIGURED)
RESOURCE_CATEGORIES = ("compute", "network", "storage", "other")
OPERATIONS = ("create", "update", "delete", "read", "other")
LISTED_OPERATIONS = ("create", "update", "delete")  # resource_detail_operations lists these
DETAIL_FACETS = ("total", "namespace", "day", "operation")
USER_KINDS = ("human", "service_account", "system_component", "anonymous")
POLICY_SEVERITIES = ("critical", "high", "medium", "low", "info")
RESPONSE_CODE_MIN, RESPONSE_CODE_MAX = 100, 599


def _suite(name: str, *parts: Expectation | list[Expectation]) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name=f"{name}_suite", expectations=flatten(*parts))


def _response_codes() -> Expectation:
    return between("response_code", RESPONSE_CODE_MIN, RESPONSE_CODE_MAX)


def _success_counts() -> list[Expectation]:
    """The resource marts' category and request/success counts."""
    return [
        in_set("category", RESOURCE_CATEGORIES),
        *non_negative("requests", "successes"),
        at_most("successes", "requests"),
        *rates("success_rate"),
    ]


def _request_counts(*more_counts: str) -> list[Expectation]:
    """Who/where request counts: non-negative, failures within requests, seen-times in order."""
    return [
        *non_negative("requests", "failures", *more_counts),
        at_most("failures", "requests"),
        at_most("first_seen", "last_seen"),
    ]


def build_overview_suite() -> gx.ExpectationSuite:
    """overview: one row per (dimension, key)."""
    return _suite(
        "overview",
        not_null("dimension", "key", "requests"),
        unique("dimension", "key"),
        in_set("dimension", OVERVIEW_DIMENSIONS),
        non_negative("requests", "events", "failures", "distinct_users", "distinct_source_ips"),
        at_most("failures", "requests"),
        at_most("requests", "events"),  # every request logged at least one event
    )


def build_detections_suite() -> gx.ExpectationSuite:
    """detections: one row per catalogue entry."""
    return _suite(
        "detections",
        not_null("detection_id", "severity", "status", "findings", "position"),
        unique("detection_id"),
        unique("position"),
        in_set("severity", DETECTION_SEVERITIES),
        in_set("status", DETECTION_STATUSES),
        non_negative("requests", "findings", "position"),
        at_most("findings", "requests"),
    )


def build_important_events_suite() -> gx.ExpectationSuite:
    """important_events: one row per (detection, request), each with its evidence pointer."""
    return _suite(
        "important_events",
        not_null("detection_id", "severity", "request_key", "evidence_sha256", "line_no"),
        unique("detection_id", "request_key"),
        in_set("severity", DETECTION_SEVERITIES),
        _response_codes(),
        non_negative("line_no"),
    )


def build_resource_operations_suite() -> gx.ExpectationSuite:
    """resource_operations: one row per (category, api_group, resource, operation)."""
    return _suite(
        "resource_operations",
        not_null("category", "resource", "operation", "requests", "successes"),
        unique("category", "api_group", "resource", "operation"),
        in_set("operation", OPERATIONS),
        _success_counts(),
    )


def build_resource_detail_suite() -> gx.ExpectationSuite:
    """resource_detail: per resource type, one row per (facet, key)."""
    return _suite(
        "resource_detail",
        not_null("category", "resource", "facet", "key", "requests", "successes"),
        unique("category", "api_group", "resource", "facet", "key"),
        in_set("facet", DETAIL_FACETS),
        _success_counts(),
    )


def build_resource_detail_operations_suite() -> gx.ExpectationSuite:
    """resource_detail_operations: one row per create/update/delete request."""
    return _suite(
        "resource_detail_operations",
        not_null(
            "request_received_ts", "category", "resource", "operation", "evidence_sha256", "line_no"
        ),
        unique("evidence_sha256", "line_no"),
        in_set("category", [c for c in RESOURCE_CATEGORIES if c != "other"]),
        in_set("operation", LISTED_OPERATIONS),
        _response_codes(),
    )


def build_source_ips_suite() -> gx.ExpectationSuite:
    """source_ips: one row per trustworthy client IP."""
    return _suite(
        "source_ips",
        not_null("ip", "requests", "ip_scope", "is_public"),
        unique("ip"),
        _request_counts("unauthorized", "forbidden", "user_count"),
        at_most("unauthorized", "failures"),
        at_most("forbidden", "failures"),
        rates("failure_rate"),
    )


def build_users_suite() -> gx.ExpectationSuite:
    """users: one row per attributed identity (null = unauthenticated requests)."""
    return _suite(
        "users",
        not_null("user_kind", "requests"),
        unique("user"),
        in_set("user_kind", USER_KINDS),
        _request_counts("unauthorized", "forbidden"),
    )


def build_impersonation_suite() -> gx.ExpectationSuite:
    """impersonation: one row per (user_name, attributed_user, impersonated_user)."""
    return _suite(
        "impersonation",
        not_null("impersonated_user", "requests"),
        unique("user_name", "attributed_user", "impersonated_user"),
        _request_counts("unauthorized", "forbidden"),
    )


def build_crd_operations_suite() -> gx.ExpectationSuite:
    """crd_operations: one row per (api_group, resource, verb, user)."""
    return _suite(
        "crd_operations",
        not_null("api_group", "resource", "verb", "requests"),
        unique("api_group", "resource", "verb", "user"),
        _request_counts(),
    )


def build_policy_findings_suite() -> gx.ExpectationSuite:
    """policy_findings: one row per (cluster, master, rule, check, severity)."""
    return _suite(
        "policy_findings",
        not_null("cluster", "master", "check", "severity", "events", "requests"),
        unique("cluster", "master", "rule", "check", "severity"),
        in_set("severity", POLICY_SEVERITIES),
        non_negative("events", "requests"),
        at_most("requests", "events"),
    )


def build_policy_fit_suite() -> gx.ExpectationSuite:
    """policy_fit: one row per (cluster, master)."""
    return _suite(
        "policy_fit",
        not_null("cluster", "master", "events", "events_matching_level"),
        unique("cluster", "master"),
        non_negative("events", "events_matching_level"),
        at_most("events_matching_level", "events"),
        rates("share"),
    )


MART_SUITES: dict[str, Callable[[], gx.ExpectationSuite]] = {
    "overview": build_overview_suite,
    "detections": build_detections_suite,
    "important_events": build_important_events_suite,
    "resource_operations": build_resource_operations_suite,
    "resource_detail": build_resource_detail_suite,
    "resource_detail_operations": build_resource_detail_operations_suite,
    "source_ips": build_source_ips_suite,
    "users": build_users_suite,
    "impersonation": build_impersonation_suite,
    "crd_operations": build_crd_operations_suite,
    "policy_findings": build_policy_findings_suite,
    "policy_fit": build_policy_fit_suite,
}
