"""Audit policy: load the cluster's Policy, compile it to Spark Columns, check events against it.

Modules: ``model`` (frozen Policy values), ``loader`` (strict YAML loading, embedded ACK
default), ``compile`` (rule matching as Columns), ``conditions`` + ``checks`` (C1–C12, the marts),
``main`` (what ``kaudit policy check|match`` run). Only the Spark-free parts are re-exported
here so that importing the package stays cheap.
"""

from __future__ import annotations

from jobs.policy.loader import load_default_policy, load_policy, parse_policy
from jobs.policy.model import GroupResources, Policy, PolicyError, PolicyRule

__all__ = [
    "GroupResources",
    "Policy",
    "PolicyError",
    "PolicyRule",
    "load_default_policy",
    "load_policy",
    "parse_policy",
]
