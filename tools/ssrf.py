"""Outbound HTTP for tools, through the SSRF guard (``config/ssrf.py``).

Every URL a tool fetches — a page for ``web_scrape``, an organization's HTTP tool or module
endpoint, the SMS gateway, the search API — goes through ``fetch``:

1. Each hop's URL is checked by the guard (every address the host resolves to must be
   public, unless ``settings.AGENTRY_SSRF_ALLOW`` lists it).
2. The connection goes to the address that was checked (the URL's host is replaced by it;
   ``Host`` and TLS SNI keep the name, so certificates are still verified against it), so a
   DNS answer that changes between check and connect (rebinding) cannot redirect it.
3. Redirects are followed by hand, each hop checked the same way; secrets are dropped when a
   redirect leaves the origin.
4. Responses are read in chunks against a byte limit and one deadline for the whole call.

The guard's refusals reach tools as ``ToolError`` subclasses (``SSRFBlocked``,
``UnresolvableHost``), which a tool call reports to the model. Environment proxies are never
used.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from config import ssrf as guard
from config.call_count import count_call
from config.ssrf import IPAddress
from tools.builtins.base import ToolError

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
_SENSITIVE = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key", "api-key"})


class SSRFBlocked(ToolError, guard.SSRFBlocked):
    """The target is not a public address (or a redirect led to one)."""


class ResponseTooLarge(ToolError):
    pass


class UnresolvableHost(ToolError, guard.UnresolvableHost):
    pass


def check_url(url: str | httpx.URL) -> tuple[httpx.URL, IPAddress]:
    """The guard's ``check_url``, its refusals as tool errors."""
    try:
        return guard.check_url(url)
    except guard.UnresolvableHost as exc:
        raise UnresolvableHost(str(exc)) from None
    except guard.SSRFBlocked as exc:
        raise SSRFBlocked(str(exc)) from None


@dataclass
class FetchResult:
    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


def _host_header(url: httpx.URL) -> str:
    host = url.host
    if ":" in host:
        host = f"[{host}]"
    return host if url.port is None else f"{host}:{url.port}"


def fetch(
    method: str,
    url: str,
    *,
    deadline: float,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    follow_redirects: bool = True,
) -> FetchResult:
    """One guarded HTTP exchange; ``deadline`` is a ``time.monotonic()`` value for all of it."""
    try:
        current = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise SSRFBlocked(f"Not a valid URL: {exc}") from exc
    method = method.upper()
    # Sizes are counted after decompression; asking for none keeps a small gzip bomb small.
    send_headers = {"Accept-Encoding": "identity", **(headers or {})}
    body = json
    origin = None
    with httpx.Client(trust_env=False, follow_redirects=False, verify=True) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            target, ip = check_url(current)
            here = (target.scheme, target.host, guard.default_port(target))
            if origin is None:
                origin = here
            elif here != origin:
                # Credentials meant for the first origin never follow a redirect elsewhere.
                send_headers = {k: v for k, v in send_headers.items() if k.lower() not in _SENSITIVE}
            left = deadline - time.monotonic()
            if left <= 0:
                raise ToolError("The request ran out of time.")
            extensions: dict[str, Any] = {
                "timeout": {"connect": min(left, 10.0), "read": left, "write": left, "pool": left}
            }
            if target.scheme == "https":
                extensions["sni_hostname"] = target.host
            request = client.build_request(
                method,
                target.copy_with(host=str(ip)),
                headers={**send_headers, "Host": _host_header(target)},
                json=body,
                extensions=extensions,
            )
            count_call()  # every hop is a request the tool made (the run's api_calls_count)
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise ToolError(f"{target.host} did not answer in time.") from exc
            except httpx.HTTPError as exc:
                raise ToolError(f"Could not reach {target.host}: {type(exc).__name__}.") from exc
            try:
                if follow_redirects and response.is_redirect and "location" in response.headers:
                    try:
                        current = target.join(response.headers["location"])
                    except (httpx.InvalidURL, ValueError) as exc:
                        raise SSRFBlocked(f"The redirect points to an invalid URL: {exc}") from exc
                    if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                        method, body = "GET", None
                    continue
                content = _read_limited(response, max_bytes=max_bytes, deadline=deadline)
                return FetchResult(response.status_code, response.headers, content, str(target))
            finally:
                response.close()
    raise ToolError(f"More than {MAX_REDIRECTS} redirects.")


def _read_limited(response: httpx.Response, *, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"The response is {int(declared)} bytes; the limit is {max_bytes}.")
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"The response is larger than the limit of {max_bytes} bytes.")
            if time.monotonic() > deadline:
                raise ToolError("The response took too long to arrive.")
            chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise ToolError("The response took too long to arrive.") from exc
    except httpx.HTTPError as exc:
        raise ToolError(f"The response broke off: {type(exc).__name__}.") from exc
    return b"".join(chunks)
