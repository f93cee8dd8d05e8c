"""Request-scoped context for log lines (request id, organization, agent, execution)."""

from __future__ import annotations

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
log_context_var: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        for key, value in log_context_var.get().items():
            setattr(record, key, value)
        return True


# Celery's loggers that say a task was sent, received or finished: one line each per tick.
_CELERY_ROUTINE_LOGGERS = frozenset({"celery.beat", "celery.worker.strategy", "celery.app.trace"})
# Beat's jobs that run every few seconds (config.celery.beat_schedule): their sending,
# receiving and success lines are logged at DEBUG, so INFO shows what happened, not the clock.
ROUTINE_TASKS = ("executions.tick",)


class RoutineTasksAtDebug(logging.Filter):
    """Lowers Celery's per-tick lines about ROUTINE_TASKS to DEBUG (kept only when the logger
    is enabled for DEBUG); a failure of such a task is an error line and passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name not in _CELERY_ROUTINE_LOGGERS or record.levelno != logging.INFO:
            return True
        message = record.getMessage()
        if not any(f"{name}[" in message or f"{name} (" in message or message.endswith(name) for name in ROUTINE_TASKS):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
