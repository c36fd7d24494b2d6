"""YAML from users (config, audit policy): safe, depth-bounded, one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from jobs.errors import UsageError

__all__ = ["DepthLimitedLoader", "load_yaml"]


class DepthLimitedLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A SafeLoader that refuses absurd nesting instead of overflowing the stack."""

    max_depth = 64

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose one node, counting how deep it is."""
        depth = getattr(self, "_depth", 0)
        if depth >= self.max_depth:
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(
                f"nested deeper than {self.max_depth} levels at line {mark.line + 1}"
            )
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


def load_yaml(path: Path, what: str, error: type[UsageError] = UsageError) -> Any:
    """Read and parse a YAML file (config, policy) with a one-line error naming it.

    Raises:
        error (a UsageError): unreadable, not UTF-8, not YAML, or nested absurdly deep.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from exc
    try:
        return yaml.load(text, Loader=DepthLimitedLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, RecursionError) as exc:
        detail = " ".join(str(exc).split()) if not isinstance(exc, RecursionError) else "too deep"
        raise error(f"{path}: {what} is not valid YAML: {detail}") from exc
