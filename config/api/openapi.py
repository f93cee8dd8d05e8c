"""OpenAPI pieces shared by views: the error shape (DESIGN.md §11) as a documented response."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from config.api.errors import ERROR_CODES

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
                "timestamp": serializers.DateTimeField(),
                "request_id": serializers.CharField(),
            },
        )
    },
)


def error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """{status: response} documenting these error codes (codes sharing a status share one)."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    return {
        status: OpenApiResponse(
            ErrorSerializer, description="; ".join(f"`{code}`: {ERROR_CODES[code][1]}" for code in names)
        )
        for status, names in by_status.items()
    }


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Yours, per agent or chain: the same key with the same body returns the first run "
    "(header Idempotent-Replayed); with another body, 422 IdempotencyKeyMismatch.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The ETag you read: the change applies only if the resource is unchanged since (else 412 "
    "PreconditionFailed). Without it, the last write wins.",
)
ETAG = OpenApiParameter(
    "ETag",
    str,
    OpenApiParameter.HEADER,
    response=True,
    description="The draft's entity tag, for If-Match on the next change.",
)
