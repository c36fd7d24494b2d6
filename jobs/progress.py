"""Progress of long steps: a line when a step starts and when it ends, with its duration.

On a terminal the lines come from rich (a spinner while the step runs); in logs (Airflow, CI,
a pipe) they are plain lines, so that a log shows where the time went.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

Echo = Callable[[str], None]


@contextlib.contextmanager
def step(echo: Echo, name: str) -> Iterator[None]:
    """Announce ``name``, run the block, then say how long it took (or that it failed)."""
    started = time.monotonic()
    echo(f"... {name}")
    spinner: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if sys.stderr.isatty():
        from rich.console import Console

        spinner = Console(stderr=True).status(name)
    try:
        with spinner:
            yield
    except BaseException:
        echo(f"failed {name} after {time.monotonic() - started:.1f} s")
        raise
    echo(f"done {name} in {time.monotonic() - started:.1f} s")
