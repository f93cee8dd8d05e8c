"""A local receiver of Agentry's webhook deliveries, for tests (real HTTP on 127.0.0.1).

    with WebhookReceiver(statuses=[500, 503]) as receiver:   # then 200 for the rest
        ...deliveries go to receiver.url...
        assert receiver.verified(secret)                       # every signature checks out
        receiver.received[-1].json["type"] == "ai.execution.completed"

``statuses`` are answered in order (then ``default_status``). Every request is recorded with
its headers and exact body bytes, so tests check the signature the way a real receiver would.
It can run as a process too: ``python -m tests.fakes.webhook_receiver --port 0`` prints its URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signature_ok(self, secret: str) -> bool:
        stamp = self.headers.get("x-agentry-timestamp", "")
        expected = "sha256=" + hmac.new(secret.encode(), f"{stamp}.".encode() + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("x-agentry-signature", ""))


class WebhookReceiver:
    def __init__(self, *, statuses: list[int] | None = None, default_status: int = 200, delay: float = 0.0):
        self.statuses = list(statuses or [])
        self.default_status = default_status
        self.delay = delay
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                    receiver.received.append(
                        Received(
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            at=time.time(),
                            answered=status,
                        )
                    )
                answer = json.dumps({"ok": 200 <= status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/agentry"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def allow_entry(self) -> str:
        """What settings.AGENTRY_SSRF_ALLOW needs to let deliveries reach this receiver."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def verified(self, secret: str) -> bool:
        with self.lock:
            return bool(self.received) and all(r.signature_ok(secret) for r in self.received)

    def of_delivery(self, delivery_id: Any) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.headers.get("x-agentry-delivery") == str(delivery_id)]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with WebhookReceiver() as running:
        print(running.url, flush=True)
        running.thread.join()
