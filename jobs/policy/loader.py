"""Strict loader for audit Policy YAML (audit.k8s.io/v1, v1beta1, v1alpha1).

kube-apiserver decodes strictly, then falls back to a lenient decode with a warning. For a
forensic re-check a silently ignored field would change the meaning of the policy, so this
loader refuses everything the apiserver would warn about or reject (spec §1.1 validation).
Every error names the place: ``<file>:<line>: rules[3].resources[0].group: ...``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from importlib import resources as package_files
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from jobs.policy.model import (
    API_VERSIONS,
    GROUP_WILDCARD,
    GroupResources,
    Policy,
    PolicyError,
    PolicyRule,
)
from jobs.vocab import LEVELS, STAGES
from jobs.yamlsafe import DepthLimitedLoader

DEFAULT_POLICY_FILE = "ack-policy.yaml"

_POLICY_FIELDS = ("apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields")
_RULE_FIELDS = (
    "level", "users", "userGroups", "verbs", "resources", "namespaces",
    "nonResourceURLs", "omitStages", "omitManagedFields",
)  # fmt: skip
_GROUP_FIELDS = ("group", "resources", "resourceNames")
_TAG_STR = "tag:yaml.org,2002:str"
_TAG_NULL = "tag:yaml.org,2002:null"
_TAG_BOOL = "tag:yaml.org,2002:bool"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_DNS_SUBDOMAIN_MAX = 253


class _Doc:
    """Error helper bound to one source name."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: Node | None, where: str, message: str) -> PolicyError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        place = f" {where}:" if where else ""
        return PolicyError(f"{self.source}{line}:{place} {message}")

    def mapping(self, node: Node, where: str, allowed: tuple[str, ...]) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, where, "must be a mapping")
        fields: dict[str, Node] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not (isinstance(key_node, ScalarNode) and key_node.tag == _TAG_STR):
                raise self.fail(
                    key_node, where, f"field names must be strings, got {key_node.value!r}"
                )
            key = key_node.value
            field_where = f"{where}.{key}" if where else key
            if key not in allowed:
                raise self.fail(
                    key_node, field_where, f'unknown field "{key}" (allowed: {", ".join(allowed)})'
                )
            if key in fields:
                raise self.fail(
                    key_node,
                    field_where,
                    f'duplicate field "{key}" (first at line {first_line[key]})',
                )
            fields[key] = value_node
            first_line[key] = key_node.start_mark.line + 1
        return fields

    def string(self, node: Node, where: str) -> str:
        if isinstance(node, ScalarNode) and node.tag == _TAG_NULL:
            return ""
        if not (isinstance(node, ScalarNode) and node.tag == _TAG_STR):
            raise self.fail(node, where, f"must be a string, got {_describe(node)}")
        return str(node.value)

    def strings(self, node: Node, where: str) -> list[tuple[str, Node]]:
        if isinstance(node, ScalarNode) and node.tag == _TAG_NULL:
            return []
        if not isinstance(node, SequenceNode):
            raise self.fail(node, where, f"must be a list, got {_describe(node)}")
        return [(self.string(item, f"{where}[{i}]"), item) for i, item in enumerate(node.value)]

    def boolean(self, node: Node, where: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == _TAG_NULL:
            return None
        if not (isinstance(node, ScalarNode) and node.tag == _TAG_BOOL):
            raise self.fail(node, where, f"must be true or false, got {_describe(node)}")
        return bool(yaml.SafeLoader.bool_values[str(node.value).lower()])


def _describe(node: Node) -> str:
    if isinstance(node, ScalarNode):
        return f"{node.value!r} ({node.tag.rsplit(':', 1)[-1]})"
    return "a list" if isinstance(node, SequenceNode) else "a mapping"


def _stages(doc: _Doc, node: Node, where: str) -> tuple[str, ...]:
    stages = []
    for i, (stage, item) in enumerate(doc.strings(node, where)):
        if stage not in STAGES:
            raise doc.fail(
                item,
                f"{where}[{i}]",
                f'unknown stage "{stage}" (expected one of {", ".join(STAGES)})',
            )
        stages.append(stage)
    return tuple(stages)


def _group_resources(doc: _Doc, node: Node, where: str) -> GroupResources:
    fields = doc.mapping(node, where, _GROUP_FIELDS)
    group = doc.string(fields["group"], f"{where}.group") if "group" in fields else ""
    valid_group = group in ("", GROUP_WILDCARD) or (
        len(group) <= _DNS_SUBDOMAIN_MAX and _DNS_SUBDOMAIN.fullmatch(group) is not None
    )
    if not valid_group:
        raise doc.fail(
            fields["group"], f"{where}.group",
            f'bad group "{group}": must be "" (core), "*" or a DNS subdomain (e.g. apps)',
        )  # fmt: skip
    names = _plain(doc, fields, "resources", where)
    resource_names = _plain(doc, fields, "resourceNames", where)
    if resource_names and not names:
        raise doc.fail(
            fields["resourceNames"], f"{where}.resourceNames",
            "resourceNames requires at least one entry in resources for this group",
        )  # fmt: skip
    return GroupResources(group=group, resources=names, resource_names=resource_names)


def _plain(doc: _Doc, fields: dict[str, Node], key: str, where: str) -> tuple[str, ...]:
    if key not in fields:
        return ()
    return tuple(value for value, _ in doc.strings(fields[key], f"{where}.{key}"))


def _non_resource_urls(doc: _Doc, node: Node, where: str) -> tuple[str, ...]:
    urls = []
    for i, (url, item) in enumerate(doc.strings(node, where)):
        if url != "*":
            if not url.startswith("/"):
                raise doc.fail(
                    item, f"{where}[{i}]", f'"{url}" must start with "/" (or be exactly "*")'
                )
            star = url.find("*")
            if 0 <= star != len(url) - 1:
                raise doc.fail(
                    item, f"{where}[{i}]", f'"{url}": "*" may only be the final character'
                )
        urls.append(url)
    return tuple(urls)


def _rule(doc: _Doc, node: Node, index: int) -> PolicyRule:
    where = f"rules[{index}]"
    fields = doc.mapping(node, where, _RULE_FIELDS)
    if "level" not in fields:
        raise doc.fail(node, f"{where}.level", "level is required")
    level = doc.string(fields["level"], f"{where}.level")
    if not level:
        raise doc.fail(fields["level"], f"{where}.level", "level is empty")
    if level not in LEVELS:
        raise doc.fail(
            fields["level"], f"{where}.level",
            f'bad level "{level}" (expected one of {", ".join(LEVELS)})',
        )  # fmt: skip
    resources_node = fields.get("resources")
    resources = tuple(
        _group_resources(doc, item, f"{where}.resources[{i}]")
        for i, item in enumerate(_sequence(doc, resources_node, f"{where}.resources"))
    )
    namespaces = _plain(doc, fields, "namespaces", where)
    urls = _optional(
        fields, "nonResourceURLs", lambda n: _non_resource_urls(doc, n, f"{where}.nonResourceURLs")
    )
    if urls and (resources or namespaces):
        raise doc.fail(
            fields["nonResourceURLs"], f"{where}.nonResourceURLs",
            "nonResourceURLs cannot be combined with resources or namespaces in one rule",
        )  # fmt: skip
    omit_managed = fields.get("omitManagedFields")
    return PolicyRule(
        level=level,
        users=_plain(doc, fields, "users", where),
        user_groups=_plain(doc, fields, "userGroups", where),
        verbs=_plain(doc, fields, "verbs", where),
        resources=resources,
        namespaces=namespaces,
        non_resource_urls=urls,
        omit_stages=_optional(
            fields, "omitStages", lambda n: _stages(doc, n, f"{where}.omitStages")
        ),
        omit_managed_fields=(
            doc.boolean(omit_managed, f"{where}.omitManagedFields")
            if omit_managed is not None
            else None
        ),
        line=node.start_mark.line + 1,
    )


def _optional(
    fields: dict[str, Node], key: str, read: Callable[[Node], tuple[str, ...]]
) -> tuple[str, ...]:
    return read(fields[key]) if key in fields else ()


def _sequence(doc: _Doc, node: Node | None, where: str) -> list[Node]:
    if node is None or (isinstance(node, ScalarNode) and node.tag == _TAG_NULL):
        return []
    if not isinstance(node, SequenceNode):
        raise doc.fail(node, where, f"must be a list, got {_describe(node)}")
    return list(node.value)


def _header(doc: _Doc, root: Node, fields: dict[str, Node]) -> str:
    for key in ("apiVersion", "kind"):
        if key not in fields:
            raise doc.fail(root, key, f"{key} is required")
    api_version = doc.string(fields["apiVersion"], "apiVersion")
    if api_version not in API_VERSIONS:
        raise doc.fail(
            fields["apiVersion"], "apiVersion",
            f'unsupported apiVersion "{api_version}" (expected one of {", ".join(API_VERSIONS)})',
        )  # fmt: skip
    kind = doc.string(fields["kind"], "kind")
    if kind != "Policy":
        raise doc.fail(fields["kind"], "kind", f'kind must be "Policy", got "{kind}"')
    return api_version


def parse_policy(text: str | bytes, source: str = "<string>") -> Policy:
    """Parse and validate policy YAML text; raise PolicyError naming file, line, rule and field."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    doc = _Doc(source)
    try:
        # nodes keep line numbers; the loader refuses absurd nesting before the stack overflows
        root = yaml.compose(raw, Loader=DepthLimitedLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{source}{line}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise PolicyError(f"{source}: invalid YAML: nested too deep") from exc
    if root is None:
        raise PolicyError(f"{source}: empty policy file")
    fields = doc.mapping(root, "", _POLICY_FIELDS)
    api_version = _header(doc, root, fields)
    rule_nodes = _sequence(doc, fields.get("rules"), "rules")
    if not rule_nodes:
        raise doc.fail(fields.get("rules", root), "rules", "a policy must have at least one rule")
    omit_managed = fields.get("omitManagedFields")
    return Policy(
        rules=tuple(_rule(doc, node, i) for i, node in enumerate(rule_nodes)),
        omit_stages=_optional(fields, "omitStages", lambda n: _stages(doc, n, "omitStages")),
        omit_managed_fields=(
            omit_managed is not None and doc.boolean(omit_managed, "omitManagedFields") is True
        ),
        api_version=api_version,
        source=source,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file at ``path``."""
    file_path = Path(path)
    try:
        raw = file_path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{file_path}: cannot read policy file: {exc.strerror}") from exc
    return parse_policy(raw, source=str(file_path))


def default_policy_text() -> str:
    """The embedded ACK policy (spec §6), as shipped in the package."""
    return package_files.files("jobs.policy").joinpath(DEFAULT_POLICY_FILE).read_text("utf-8")


def load_default_policy() -> Policy:
    """The embedded default: the ACK audit policy (/etc/kubernetes/audit-policy.yml on ACK)."""
    return parse_policy(default_policy_text(), source=f"<embedded {DEFAULT_POLICY_FILE}>")
