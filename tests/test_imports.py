"""Every top-level package imports together, and the process gets to the end.

`import great_expectations` imports `pyspark.testing`, which calls sys.exit(0) when pyarrow or
grpc-status is missing: a test that only imported would pass while the process quietly ended.
So the imports run in a child process that must print a marker after the last one.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import jobs

MARKER = "kaudit-imports-reached-the-end"


def test_every_package_imports_in_one_process():
    modules = sorted(
        m.name
        for m in pkgutil.walk_packages(jobs.__path__, "jobs.")
        if not m.name.endswith("__main__")
    )
    code = "\n".join(
        ["import jobs, reports, expectations, dags"]
        + [f"import {m}" for m in modules]
        + [
            "import great_expectations, pyspark, airflow.sdk, weasyprint",
            "import pyspark.sql.connect.session",
            f"print({MARKER!r})",
        ]
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith(MARKER), (proc.stdout[-2000:], proc.stderr[-2000:])
    assert len(modules) >= 8
