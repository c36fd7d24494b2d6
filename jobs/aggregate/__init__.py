"""Weekly aggregates and detections: lake/events -> marts/<cluster>/<week>/ + summary.json.

Modules: ``requests`` (events -> one row per request), ``transforms`` (overview, resource
operations/detail, CRDs), ``identities`` (users, impersonation, source IPs), ``rules`` and
``detections`` (the catalogue of docs/detections.md), ``observability`` (could the policy log
the bodies a detection reads?), ``summary`` (week window, summary.json), ``io``, ``main``
(``run_weekly``) and ``cli`` (``kaudit report``).
"""
