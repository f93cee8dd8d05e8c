"""Django's PostgreSQL backend, with bulk batches sized for server-side binding.

With ``server_side_binding`` (``DB_SERVER_SIDE_BINDING``, on by default) every parameter of a
statement travels on its own in PostgreSQL's protocol, which counts them in 16 bits: a statement
with more than 65,535 parameters is refused ("number of parameters must be between 0 and
65535"). Client-side binding has no such limit, so Django's PostgreSQL backend never splits a
``bulk_create``, ``bulk_update`` or the deletion of collected rows (``pk IN (...)``); a knowledge
document of a few thousand chunks or an organization's runs deleted with it would fail. Here
those batches are cut to fit, as Django does for SQLite and Oracle.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base, operations

MAX_PARAMETERS = 65_535


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields: Any, objs: Any) -> int:
        size = super().bulk_batch_size(fields, objs)
        if not self.connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
            return size
        return max(1, min(size, MAX_PARAMETERS // max(len(fields), 1)))


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
