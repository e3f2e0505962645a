"""What FunctionLayer says on its ``functionlayer`` logger: a setup mistake (once per process)
and an execution whose outcome could not be recorded."""

from __future__ import annotations

from functionlayer._errors import BackendUnavailableError, ConfigurationError

__all__ = ["log_report_failure", "report_setup_mistake"]

_reported: set[str] = set()


def report_setup_mistake(exc: BaseException) -> None:
    """A wrong token, URL or token kind is the developer's mistake, not a decision: besides the
    message the model gets, say it once per process at ERROR on the ``functionlayer`` logger
    (stderr when logging is not configured), with the fix the message carries."""
    if isinstance(exc, ConfigurationError):
        what = "is set up wrong"
    elif isinstance(exc, BackendUnavailableError) and exc.never_reached:
        what = "cannot reach its server"
    else:
        return
    key = f"{type(exc).__name__}:{getattr(exc, 'status_code', None)}"
    if key in _reported:
        return
    _reported.add(key)
    import logging

    logging.getLogger("functionlayer").error(
        "FunctionLayer %s, so no request reaches a person and guarded functions do not run: %s",
        what,
        exc,
    )


def log_report_failure(fn: str, call_id: str, exc: Exception) -> None:
    import logging

    logging.getLogger("functionlayer").warning(
        "%s ran under call id %s but its outcome could not be recorded (%s: %s); it stays "
        "'started, outcome unknown' and will not run again",
        fn,
        call_id,
        type(exc).__name__,
        exc,
    )
