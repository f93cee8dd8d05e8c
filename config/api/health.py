"""``GET /api/v1/health/``: database, Redis and worker liveness; never crashes on an outage."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from redis import Redis
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.errors import error_body
from config.workers import live_workers


def _check(fn) -> dict:
    started = time.perf_counter()
    try:
        detail = fn() or {}
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2), **detail}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return {"vector": row[0] if row else None}


def _redis() -> dict:
    client = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    finally:
        client.close()
    return {}


def _workers() -> dict:
    workers = live_workers()
    return {"count": len(workers), "names": sorted(workers)}


@extend_schema(
    responses={
        200: inline_serializer(
            "Health",
            {
                "status": serializers.ChoiceField(choices=["ok", "degraded", "down"]),
                "database": serializers.DictField(),
                "redis": serializers.DictField(),
                "workers": serializers.DictField(),
            },
        )
    },
    auth=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def health(request: Request) -> Response:
    database = _check(_database)
    redis = _check(_redis)
    workers = _check(_workers) if redis["ok"] else {"ok": False, "error": "redis unavailable", "count": 0}
    # A reachable Redis with no live worker is still not ok: nothing would run.
    workers["ok"] = bool(workers.get("ok")) and workers.get("count") != 0
    if not database["ok"]:
        overall = "down"
    elif redis["ok"] and workers["ok"]:
        overall = "ok"
    else:
        overall = "degraded"
    body = {"status": overall, "database": database, "redis": redis, "workers": workers}
    if overall == "down":
        # Load balancers read the 503; clients read the error shape, with the checks inside.
        error = error_body("ServiceUnavailable", "The database is unavailable.", body)
        return Response(error, status=503, headers={"Retry-After": "5"})
    return Response(body)
