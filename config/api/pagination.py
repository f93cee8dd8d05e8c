from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.errors import InvalidInput


def _non_negative_int(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(validation_errors={name: ["Must be a whole number."]}) from None
    if value < 0:
        raise InvalidInput(validation_errors={name: ["Must be zero or more."]})
    return value


# An offset no list reaches: the page past it is empty without asking PostgreSQL, whose
# OFFSET (a bigint) would refuse a larger one.
PAST_ANY_ROW = 2**62


class LimitOffsetTotalPagination(LimitOffsetPagination):
    """``?limit=&offset=`` -> {"results", "total", "limit", "offset"} (API.md).

    A limit over max_limit is capped; a limit or offset that is not a whole number >= 0 is a 400.
    """

    default_limit = 50
    max_limit = 500

    def get_limit(self, request: Request) -> int | None:
        limit = _non_negative_int(request, self.limit_query_param, self.default_limit)
        if limit == 0:
            raise InvalidInput(validation_errors={"limit": ["Must be at least 1."]})
        return min(limit, self.max_limit) if limit is not None else None

    def get_offset(self, request: Request) -> int:
        return _non_negative_int(request, self.offset_query_param, 0) or 0

    def paginate_queryset(
        self,
        queryset: Any,
        request: Request,
        view: Any = None,
        *,
        rows: Callable[[Any, int, int], list] | None = None,
    ) -> list | None:
        """The page, then the total. A page that is not full ends the list, so it tells the
        total itself (offset + its rows) and the ``COUNT(*)`` is left out: on a tenant of
        many rows that count was most of a list request's PostgreSQL time. Only a full page,
        or an empty one past the start, counts.

        ``rows(queryset, offset, limit)``: reads the page instead of slicing the queryset
        (the lists that write plain rows, config.api.rows.page_rows); the count stays on
        ``queryset``."""
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        self.offset = self.get_offset(request)
        if self.offset > PAST_ANY_ROW:
            page = []  # beyond PostgreSQL's bigint OFFSET, and beyond any table's rows
        elif rows is None:
            page = list(queryset[self.offset : self.offset + self.limit])
        else:
            page = rows(queryset, self.offset, self.limit)
        if 0 < len(page) < self.limit or (not page and self.offset == 0):
            self.count = self.offset + len(page)
        else:
            self.count = self.get_count(queryset)
        return page

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "total": self.count, "limit": self.limit, "offset": self.offset})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results", "total", "limit", "offset"],
            "properties": {
                "results": schema,
                "total": {"type": "integer"},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
            },
        }
