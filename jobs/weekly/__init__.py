"""The weekly job: lake/events -> marts/<cluster>/<week>/ + summary.json.

Modules: ``requests`` (events -> one row per request), ``marts`` (overview, resource
operations/detail, CRDs), ``identities`` (users, impersonation, source IPs), ``summary`` (week
window, summary.json) and ``main`` (``run``: wiring only). The detections live in
``jobs.detections``.
"""
