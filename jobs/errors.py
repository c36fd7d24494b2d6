"""The errors a kaudit command reports to its user, and the exit code each one means.

Every failure a user can cause or meet (bad arguments, bad config, a missing home, damaged
evidence) is raised as a :class:`KauditError` subclass whose message names the thing at fault
(file, line, field or path). ``jobs.cli`` prints it as one line, ``kaudit: error: <message>``,
and exits with its code; no traceback reaches the user.
"""

from __future__ import annotations

# Documented in `kaudit --help` and the README; keep the three in step.
EXIT_OK = 0
EXIT_FINDINGS = 1  # the command ran and found a problem: verify mismatch, ledger off, failed gate
EXIT_USAGE = 2  # bad arguments, bad config, missing or unknown home/cluster/week
EXIT_PARTIAL_COLLECTION = 3  # some masters (or some of their files) could not be collected
EXIT_DATA = 4  # input or store refused: evidence altered, ingest could not account for lines
EXIT_DELIVERY = 5  # the report was written but could not be delivered (SMTP, webhook)
EXIT_VALIDATION = 6  # validation failed and the configured gate blocks publishing
EXIT_INTERNAL = 70  # a bug: the message says where the log with details is
EXIT_RESOURCES = 71  # Spark ran out of memory or its JVM stopped: give the driver more memory

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "ok",
    EXIT_FINDINGS: "findings or failed checks (verify mismatch, ledger does not add up)",
    EXIT_USAGE: "bad usage: arguments, config, home, cluster or week",
    EXIT_PARTIAL_COLLECTION: "partial collection: some masters or files were not collected",
    EXIT_DATA: "data refused: evidence altered or lines not accounted for; nothing committed",
    EXIT_DELIVERY: "report written but not delivered (SMTP or webhook)",
    EXIT_VALIDATION: "validation failed and publishing is blocked",
    EXIT_INTERNAL: "internal error (a bug): details in the log file named",
    EXIT_RESOURCES: "Spark ran out of memory or its JVM stopped: raise KAUDIT_SPARK_DRIVER_MEMORY",
}


class KauditError(Exception):
    """A failure the user must see as one line; ``exit_code`` is what the command exits with."""

    exit_code = EXIT_FINDINGS


class UsageError(KauditError):
    """Bad arguments, config values, home, cluster or week."""

    exit_code = EXIT_USAGE


class DataError(KauditError):
    """Input or store refused; nothing was committed."""

    exit_code = EXIT_DATA
