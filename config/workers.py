"""Worker liveness: each worker's main process refreshes a Redis key every few seconds.

The health endpoint (and the operator dashboard) read these keys instead of broadcasting a
Celery ``ping`` and waiting for replies, so a health check costs one Redis round trip.
"""

from __future__ import annotations

import logging
import socket
import threading

from django.conf import settings
from redis import Redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "agentry:worker:"


def _client():
    return Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def live_workers() -> list[str]:
    client = _client()
    try:
        return [key.decode()[len(KEY_PREFIX) :] for key in client.scan_iter(f"{KEY_PREFIX}*", count=100)]
    finally:
        client.close()


class Heartbeat:
    def __init__(self, name: str, interval: float):
        self.name = name
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agentry-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        try:
            client = _client()
            client.delete(KEY_PREFIX + self.name)
            client.close()
        except Exception:
            logger.warning("could not remove worker heartbeat", exc_info=True)

    def _run(self) -> None:
        client = _client()
        ttl = max(int(self.interval * 3), 2)
        while not self._stop.is_set():
            try:
                client.set(KEY_PREFIX + self.name, "1", ex=ttl)
            except Exception:
                logger.warning("worker heartbeat failed", exc_info=True)
            self._stop.wait(self.interval)


_heartbeat: Heartbeat | None = None


def start_heartbeat(hostname: str | None = None) -> None:
    global _heartbeat
    if _heartbeat is None:
        _heartbeat = Heartbeat(hostname or socket.gethostname(), settings.WORKER_HEARTBEAT_SECONDS)
        _heartbeat.start()


def stop_heartbeat() -> None:
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
