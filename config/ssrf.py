"""The guard against server-side request forgery: may the platform connect to this URL?

Every URL an organization configures or a tool fetches is checked here: tools' outbound
HTTP (``tools/ssrf.py``), organizations' model endpoints (``executions/providers.py``),
webhook deliveries, MCP servers and provider connections (the ``SsrfGuard`` that
``config.guarded_http`` clients take). It lives in ``config`` because every app uses it.

1. The host is resolved once (``getaddrinfo``, which also reads the odd spellings of an
   address: ``2130706433``, ``0x7f.1``, ``127.1``) and *every* address it gives is checked; a
   name with one private address among public ones is refused, since we cannot know which
   one a later lookup would return.
2. Only global unicast addresses pass: no loopback, private, link-local (the cloud metadata
   service at 169.254.169.254), shared, reserved, multicast or unspecified ones. An IPv6
   address that carries an IPv4 one is judged by that address (mapped ``::ffff:127.0.0.1``,
   compatible ``::127.0.0.1``, translated ``::ffff:0:127.0.0.1``, 6to4, Teredo, NAT64
   ``64:ff9b::/96``); any other IPv6 address must be global unicast (``2000::/3``, less the
   special ranges inside it).
3. The caller connects to the address that was checked (``check_url`` returns it), so a DNS
   answer that changes between check and connect (rebinding) cannot redirect it.

``settings.AGENTRY_SSRF_ALLOW`` lists exceptions (an intranet CRM, a local search server):
``"10.1.2.3:8443"`` (address and port), ``"10.0.0.0/8"`` (any port), ``"crm.internal:443"`` or
``"crm.internal"`` (a host name, whatever it resolves to).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from django.conf import settings

from config.guarded_http import EndpointRefused

# Names that reach a cloud's instance metadata service without its link-local address.
BLOCKED_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
# Only 2000::/3 is allocated as global unicast; everything else in IPv6 is reserved, local or
# special. Inside it, ranges this Python may not know as special yet are refused by name.
_IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_IPV6_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_IPV6_NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in (
        "2001::/23",  # IETF protocol assignments (Teredo is judged by its IPv4 addresses above)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(Exception):
    """A URL the platform will not connect to (the message says why)."""


class SSRFBlocked(UrlRefused):
    """The target is not a public address (or a redirect led to one)."""


class UnresolvableHost(UrlRefused):
    pass


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (empty when it carries none).

    A packet to any of these forms can end up at the IPv4 address inside: mapped
    (``::ffff:a.b.c.d``), compatible (``::a.b.c.d``, deprecated but still routed by some
    stacks), translated (``::ffff:0:a.b.c.d``, SIIT), 6to4 (``2002:AABB:CCDD::``), Teredo
    (server and client) and NAT64 (``64:ff9b::a.b.c.d``).
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are the IPv6 unspecified and loopback
        return [low32]
    if ip in _IPV4_TRANSLATED or ip in _NAT64:
        return [low32]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be fetched, or None for a public unicast address."""
    inner = _embedded_ipv4(ip)
    if inner:
        for address in inner:
            problem = address_problem(address)
            if problem:
                return f"{problem} inside an IPv6 address"
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _IPV6_UNIQUE_LOCAL or ip.is_site_local:
            return "a private address"
        if (
            ip not in _IPV6_GLOBAL_UNICAST
            or any(ip in network for network in _IPV6_NOT_GLOBAL)
            or ip.is_private
            or ip.is_reserved
        ):
            return "a reserved address"
        return None
    if ip.is_private:
        return "a private address"
    if not ip.is_global or ip.is_reserved:
        return "a reserved or shared address"
    return None


@dataclass(frozen=True)
class _Allow:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    host: str | None
    port: int | None


def _parse_allow(entries: Iterable[str]) -> list[_Allow]:
    parsed: list[_Allow] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            parsed.append(_Allow(ipaddress.ip_network(entry, strict=False), None, None))
            continue
        except ValueError:
            pass
        host, port = entry, None
        if entry.startswith("["):  # [::1]:8080
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else None
        elif entry.count(":") == 1:
            host, _, port_text = entry.partition(":")
            port = int(port_text)
        try:
            parsed.append(_Allow(ipaddress.ip_network(host), None, port))
        except ValueError:
            parsed.append(_Allow(None, host, port))
    return parsed


def _allowed(allow: list[_Allow], *, host: str, ip: IPAddress, port: int) -> bool:
    for entry in allow:
        if entry.port is not None and entry.port != port:
            continue
        if entry.network is not None and ip in entry.network:
            return True
        if entry.host is not None and entry.host == host:
            return True
    return False


def default_port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"Cannot resolve host {host!r}.") from exc
    seen: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in seen:
            seen.append(ip)
    if not seen:
        raise UnresolvableHost(f"Cannot resolve host {host!r}.")
    return seen


def check_url(url: str | httpx.URL) -> tuple[httpx.URL, IPAddress]:
    """The parsed URL and the one address to connect to; raises SSRFBlocked."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise SSRFBlocked(f"Not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise SSRFBlocked(f"Only http and https URLs may be fetched, not {parsed.scheme or 'a relative URL'!r}.")
    host = (parsed.host or "").rstrip(".").lower()
    if not host:
        raise SSRFBlocked("The URL has no host.")
    if parsed.userinfo:
        raise SSRFBlocked("URLs with a user name or password are refused.")
    port = default_port(parsed)
    allow = _parse_allow(getattr(settings, "AGENTRY_SSRF_ALLOW", ()) or ())
    if host in BLOCKED_HOSTNAMES:
        raise SSRFBlocked(f"Refused: {host} is a cloud metadata host.")
    addresses = resolve(host, port)
    for ip in addresses:
        if _allowed(allow, host=host, ip=ip, port=port):
            continue
        problem = address_problem(ip)
        if problem:
            raise SSRFBlocked(f"Refused: {host} is {ip}, {problem}.")
    return parsed, addresses[0]


@dataclass(frozen=True)
class SsrfGuard:
    """The guard ``config.guarded_http`` clients take: every connection resolved and checked
    here; ``withheld``: the platform's provider keys, which never go to such a server."""

    withheld: frozenset[str] = frozenset()

    def resolve(self, url: str) -> str:
        try:
            return str(check_url(url)[1])
        except SSRFBlocked as exc:
            raise EndpointRefused(str(exc)) from None


def ssrf_guard() -> SsrfGuard:
    keys = getattr(settings, "PROVIDER_ENV", {}).values()
    return SsrfGuard(withheld=frozenset(env["api_key"] for env in keys if env.get("api_key")))
