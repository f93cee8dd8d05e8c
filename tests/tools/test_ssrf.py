"""The SSRF guard: every spelling of a local address is refused before any connection.

The canary listens on 127.0.0.1 (and ::1); each URL of the corpus points at it in another
disguise, and it must see no connection at all. Addresses nobody listens on here (cloud
metadata, private ranges) must fail as *refused*, not as unreachable.
"""

from __future__ import annotations

import socket
import time

import pytest

from config.ssrf import address_problem
from tools.builtins.base import ToolError
from tools.ssrf import ResponseTooLarge, SSRFBlocked, check_url, fetch


def _deadline(seconds: float = 5) -> float:
    return time.monotonic() + seconds


def _canary_corpus(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/",
        f"http://localhost:{port}/",
        f"http://LOCALHOST.:{port}/",
        f"http://2130706433:{port}/",  # decimal
        f"http://017700000001:{port}/",  # octal, one number
        f"http://0x7f000001:{port}/",  # hex, one number
        f"http://0x7f.0.0.1:{port}/",  # hex first octet
        f"http://0x7f.1:{port}/",
        f"http://127.1:{port}/",  # short form
        f"http://127.000.000.001:{port}/",
        f"http://0177.0.0.1:{port}/",  # octal dotted (httpx refuses to parse it: refused all the same)
        f"http://0:{port}/",  # 0.0.0.0 reaches local services on Linux
        f"http://0.0.0.0:{port}/",
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
        f"http://[::]:{port}/",
        f"http://[2002:7f00:1::1]:{port}/",  # 6to4 around 127.0.0.1
        f"http://[64:ff9b::7f00:1]:{port}/",  # NAT64 around 127.0.0.1
        f"http://[::127.0.0.1]:{port}/",  # IPv4-compatible (deprecated, still routed by some stacks)
        f"http://[::7f00:1]:{port}/",
        f"http://[::ffff:0:127.0.0.1]:{port}/",  # IPv4-translated (SIIT)
        f"http://[64:ff9b:1::7f00:1]:{port}/",  # local-use NAT64
        f"http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}/",  # Teredo, client 127.0.0.1
        f"http://user:pw@127.0.0.1:{port}/",
        f"https://127.0.0.1:{port}/",
        *_local_names(port),
    ]


def _local_names(port: int) -> list[str]:
    """Names that resolve to this machine (a DNS name pointing at a private address)."""
    import ipaddress

    names = []
    for name in (socket.gethostname(), "ip6-localhost"):
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(name, port)}
        except OSError:
            continue
        if addresses and all(address_problem(ipaddress.ip_address(a.split("%")[0])) for a in addresses):
            names.append(f"http://{name}:{port}/")
    return names


def test_the_canary_sees_no_connection_from_any_spelling_of_loopback(canary):
    # The canary works: a plain connection is counted.
    socket.create_connection(("127.0.0.1", canary.port), timeout=2).close()
    time.sleep(0.2)
    assert canary.connections == 1
    for url in _canary_corpus(canary.port):
        with pytest.raises(ToolError) as excinfo:
            fetch("GET", url, deadline=_deadline())
        assert isinstance(excinfo.value, SSRFBlocked) or "resolve" in str(excinfo.value), (url, excinfo.value)
    time.sleep(0.3)
    assert canary.connections == 1, "a refused URL reached the canary"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6 (unique local)
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/latest/meta-data/",  # Alibaba, shared address space
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://198.18.0.1/",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://127.0.0.1:25/",
        "/relative/path",
    ],
)
def test_private_metadata_and_odd_schemes_are_refused_before_connecting(url):
    started = time.monotonic()
    with pytest.raises(SSRFBlocked):
        fetch("GET", url, deadline=_deadline())
    assert time.monotonic() - started < 1.0  # refused at once, not after a connect timeout


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("::10.0.0.1", "private"),
        ("::169.254.169.254", "link-local"),
        ("::ffff:0:127.0.0.1", "loopback"),  # IPv4-translated
        ("::ffff:0:192.168.1.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),  # IPv4-mapped
        ("2002:a00:1::1", "private"),  # 6to4 around 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),  # Teredo, client 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
        ("64:ff9b:1::8.8.8.8", "reserved"),  # local-use NAT64: the operator's own translator
        ("4000::1", "reserved"),  # not global unicast (IANA reserved)
        ("5f00::1", "reserved"),  # SRv6 SIDs
        ("100::1", "reserved"),  # discard-only
        ("2001:db8::1", "reserved"),  # documentation
        ("3fff::1", "reserved"),  # documentation (RFC 9637)
        ("fec0::1", "private"),  # site-local (deprecated, still private)
        ("fd00::1", "private"),
    ],
)
def test_every_ipv6_form_is_judged_by_the_ipv4_address_inside_it_and_reserved_ranges_are_refused(address, problem):
    import ipaddress

    found = address_problem(ipaddress.ip_address(address))
    assert found is not None and problem in found, (address, found)


@pytest.mark.parametrize(
    "address", ["::ffff:8.8.8.8", "::ffff:0:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808", "2606:4700::1111"]
)
def test_ipv6_forms_of_public_addresses_pass(address):
    import ipaddress

    assert address_problem(ipaddress.ip_address(address)) is None


def test_explanations_name_the_problem():
    import ipaddress

    assert "link-local" in address_problem(ipaddress.ip_address("169.254.169.254"))
    assert "loopback" in address_problem(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert "IPv6" in address_problem(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert address_problem(ipaddress.ip_address("93.184.216.34")) is None
    assert address_problem(ipaddress.ip_address("2606:4700::1111")) is None


def test_a_redirect_into_a_private_address_is_refused(http_fake, canary):
    http_fake.route("GET", "/hop", status=302, headers={"Location": f"http://127.0.0.1:{canary.port}/"})
    http_fake.route("GET", "/hop-metadata", status=301, headers={"Location": "http://169.254.169.254/"})
    http_fake.route("GET", "/hop-decimal", status=307, headers={"Location": f"http://2130706433:{canary.port}/x"})
    for path in ("/hop", "/hop-metadata", "/hop-decimal"):
        with pytest.raises(SSRFBlocked):
            fetch("GET", http_fake.url(path), deadline=_deadline())
    time.sleep(0.2)
    assert canary.connections == 0


def test_allowed_redirects_are_followed_and_secrets_stay_behind(http_fake, settings):
    from tests.fakes.http_fakes import FakeHttpServer

    with FakeHttpServer() as other:
        settings.AGENTRY_SSRF_ALLOW = [http_fake.allow_entry, other.allow_entry]
        other.route("GET", "/final", text="<p>done</p>")
        http_fake.route("GET", "/start", status=302, headers={"Location": "/middle"})
        http_fake.route("GET", "/middle", status=302, headers={"Location": other.url("/final")})
        result = fetch("GET", http_fake.url("/start"), deadline=_deadline(), headers={"Authorization": "Bearer s3cr3t"})
        assert result.status_code == 200 and b"done" in result.content
        assert http_fake.requests_to("/middle")[0].headers["authorization"] == "Bearer s3cr3t"
        assert "authorization" not in other.requests_to("/final")[0].headers  # another origin


def test_too_many_redirects(http_fake):
    http_fake.route("GET", "/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(ToolError, match="redirects"):
        fetch("GET", http_fake.url("/loop"), deadline=_deadline())


def test_the_allow_list_is_per_port(http_fake, canary, settings):
    # The fake's port is allowed; the canary on the same address is not.
    assert check_url(http_fake.url("/x"))[1].is_loopback
    with pytest.raises(SSRFBlocked):
        check_url(f"http://127.0.0.1:{canary.port}/")
    settings.AGENTRY_SSRF_ALLOW = ["127.0.0.0/8"]
    check_url(f"http://127.0.0.1:{canary.port}/")  # a whole network, any port


def test_oversized_responses_are_refused(http_fake):
    http_fake.route("GET", "/big", text="x" * 50_000)
    with pytest.raises(ResponseTooLarge):
        fetch("GET", http_fake.url("/big"), deadline=_deadline(), max_bytes=10_000)
    # Without a Content-Length to go by, the counting while reading stops it too.
    http_fake.route("GET", "/big-chunks", text="y" * 50_000, drip_bytes=8192, drip_interval=0)
    with pytest.raises(ResponseTooLarge):
        fetch("GET", http_fake.url("/big-chunks"), deadline=_deadline(), max_bytes=10_000)


def test_one_deadline_for_the_whole_exchange(http_fake):
    http_fake.route("GET", "/slow", json={"ok": True}, delay=3)
    started = time.monotonic()
    with pytest.raises(ToolError, match="time"):
        fetch("GET", http_fake.url("/slow"), deadline=_deadline(0.5))
    assert time.monotonic() - started < 2
    # A server that answers at once but drips its body slowly is cut off too.
    http_fake.route("GET", "/drip", text="z" * 400, drip_bytes=10, drip_interval=0.05)
    started = time.monotonic()
    with pytest.raises(ToolError):
        fetch("GET", http_fake.url("/drip"), deadline=_deadline(0.5))
    assert time.monotonic() - started < 2


def test_unresolvable_names_fail_clearly():
    with pytest.raises(ToolError, match="resolve"):
        fetch("GET", "http://no-such-host.invalid/", deadline=_deadline())
