"""Errors of the event log."""


class LogError(Exception):
    """Base of every log error."""


class LogFullError(LogError):
    """The log cannot grow: the disk is full or the configured maximum size is reached.

    Nothing of the failed append was written; the log stays readable and consistent.
    """


class LogUnavailableError(LogError):
    """The log's servers did not confirm in time (a distributed log mid-failover, or out of
    quorum). Part of the append may be stored; sending it again is safe (de-duplicated)."""


class LogClosedError(LogError):
    """The log is closed or closing; appends are refused."""
