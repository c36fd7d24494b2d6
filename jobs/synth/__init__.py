"""Synthetic kube-apiserver audit logs for one ISO week: demo data and benchmark input.

Writes ``<out_dir>/<master>/kubernetes.audit`` plus lumberjack backups
``kubernetes-YYYY-MM-DDTHH-MM-SS.mmm.audit[.gz]`` for every master, as an ACK cluster running the
ACK audit policy (docs/audit-policy-semantics.md section 6) would leave them:

* only requests the ACK policy logs, at the level it gives them; ``RequestReceived`` is omitted,
  long-running requests (watch, exec, attach, log, portforward, proxy) have ``ResponseStarted`` +
  ``ResponseComplete``, a 401 has a single ``ResponseStarted`` with ``user: {}``;
* Go ``encoding/json`` output: compact, HTML-escaped, v1 key order, microsecond UTC timestamps;
* lumberjack rotation: rotate before a write that would push the file strictly above the limit,
  backups named after the UTC rotation time, optional gzip (no stored name, mtime 0).

The traffic is data: ``actors.yaml`` (who), ``background.yaml`` (weighted request templates),
``objects.yaml`` (object bodies) and ``incidents.yaml`` (the planted incidents, whose table
:data:`PLANTED` is exact for every seed and size). Pure stdlib plus PyYAML, streaming,
deterministic.
"""

from __future__ import annotations

from jobs.synth.incidents import PLANTED, planted_markdown
from jobs.synth.main import LOCAL_TZ_NAME, run, synth_week

__all__ = ["LOCAL_TZ_NAME", "PLANTED", "planted_markdown", "run", "synth_week"]
