"""The error ingest raises when it must refuse a run."""

from __future__ import annotations

from jobs.errors import DataError


class IngestError(DataError):
    """Ingest could not account for every line, or evidence is missing; nothing was committed."""
