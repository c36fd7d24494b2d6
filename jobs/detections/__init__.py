"""The detection catalogue of docs/detections.md and how each detection is found.

Modules: ``model`` (what a Detection is), ``catalogue`` (the entries: add a detection here),
``predicates`` (per-request building blocks), ``windows`` (rates, bursts, per-day counts,
scanner agents), ``columns`` (request-summary columns), ``findings`` (important events and the
detections mart) and ``observability`` (could the policy log the bodies a detection reads?).
"""
