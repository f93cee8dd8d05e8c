"""Errors a model (or any code below the API) raises when a rule of the domain refuses
something. They carry no HTTP: the API's exception handler (config/api/errors.py) maps
``code``, a name of its ERROR_CODES, to the status and error shape of DESIGN.md §11."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Subclasses name their ``code``; the message says what was refused and why."""

    code = "Conflict"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None):
        self.message = message
        self.details = details or {}
        super().__init__(message)
