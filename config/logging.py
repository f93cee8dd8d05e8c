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
