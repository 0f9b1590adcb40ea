"""Which URLs webhooks may call: https on public addresses only, checked when an endpoint is
saved and again, against the address actually connected to, before every request (SSRF)."""

from __future__ import annotations

import ipaddress
import socket

import anyio
import httpx

from core.errors import Invalid

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The IANA special-purpose address registries (iana.org/assignments/iana-ipv4-special-registry,
# iana-ipv6-special-registry), every entry, whether or not the registry calls it globally
# reachable, plus multicast and the deprecated ranges Python's ``ipaddress`` still knows.
# Stated here rather than left to ``ipaddress.is_global``, whose tables differ between Python
# versions and miss some of these (192.88.99.0/24, NAT64, 2002::/16's embedded addresses).
_SPECIAL_IPV4 = {
    "0.0.0.0/8": "this network",
    "10.0.0.0/8": "private",
    "100.64.0.0/10": "shared address space (CGNAT)",
    "127.0.0.0/8": "loopback",
    "169.254.0.0/16": "link-local",
    "172.16.0.0/12": "private",
    "192.0.0.0/24": "IETF protocol assignments",
    "192.0.2.0/24": "documentation",
    "192.31.196.0/24": "AS112",
    "192.52.193.0/24": "AMT",
    "192.88.99.0/24": "6to4 relay anycast",
    "192.168.0.0/16": "private",
    "192.175.48.0/24": "AS112 direct delegation",
    "198.18.0.0/15": "benchmarking",
    "198.51.100.0/24": "documentation",
    "203.0.113.0/24": "documentation",
    "224.0.0.0/4": "multicast",
    "240.0.0.0/4": "reserved",
    "255.255.255.255/32": "broadcast",
}
_SPECIAL_IPV6 = {
    "::/128": "unspecified",
    "::1/128": "loopback",
    "::/96": "IPv4-compatible (deprecated)",
    "64:ff9b::/96": "NAT64",
    "64:ff9b:1::/48": "local-use NAT64",
    "100::/64": "discard-only",
    "100:0:0:1::/64": "dummy prefix",
    "2001::/23": "IETF protocol assignments (Teredo among them)",
    "2001:db8::/32": "documentation",
    "2620:4f:8000::/48": "AS112 direct delegation",
    "3fff::/20": "documentation",
    "5f00::/16": "SRv6 SIDs",
    "fc00::/7": "unique local",
    "fe80::/10": "link-local",
    "fec0::/10": "site-local (deprecated)",
    "ff00::/8": "multicast",
}
_SPECIAL = [
    (ipaddress.ip_network(network), reason)
    for table in (_SPECIAL_IPV4, _SPECIAL_IPV6)
    for network, reason in table.items()
]
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def refusal(ip: IPAddress) -> str | None:
    """Why webhooks may not be sent to this address, or None for a public one.

    Addresses that embed an IPv4 address are judged by it: IPv4-mapped (``::ffff:a.b.c.d``)
    and 6to4 (``2002:aabb:ccdd::/48``). NAT64 and Teredo are refused outright, as what they
    reach depends on a translator or relay we cannot see."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return refusal(ip.ipv4_mapped)
        if ip in _SIX_TO_FOUR and ip.sixtofour is not None:
            inner = refusal(ip.sixtofour)
            return f"6to4 for {ip.sixtofour}, {inner}" if inner else None
    for network, reason in _SPECIAL:
        if ip in network:
            return reason
    # A backstop for whatever the tables above may lack in a later registry.
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return "not globally routable"
    return None


def parse_endpoint_url(raw: str, *, allow_http_loopback: bool) -> httpx.URL:
    """The URL if its form is acceptable; where it points is checked by ``resolve_endpoint``."""
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise Invalid(f"The webhook URL is not a valid URL: {exc}.") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise Invalid("The webhook URL must be an absolute https:// URL.")
    if url.scheme == "http" and not allow_http_loopback:
        raise Invalid("The webhook URL must use https.")
    # The URL is shown to every member of the tenant and written to logs: no secrets in it.
    if url.userinfo:
        raise Invalid("The webhook URL may not contain a user name or password; verify signatures instead.")
    if url.fragment:
        raise Invalid("The webhook URL may not contain a fragment (#...).")
    return url


async def resolve_endpoint(url: httpx.URL, *, allow_http_loopback: bool) -> list[str]:
    """The addresses to connect to, in the resolver's order. Every address the host resolves
    to must be allowed, so a name that mixes a public address with an internal one is refused
    as a whole."""
    host = url.raw_host.decode("ascii").strip("[]")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Invalid(f"The webhook host {url.host!r} does not resolve.") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise Invalid(f"The webhook host {url.host!r} does not resolve.")
    loopback_only = True
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if ip.is_loopback and allow_http_loopback:
            continue
        loopback_only = False
        if reason := refusal(ip):
            raise Invalid(
                f"The webhook host {url.host!r} resolves to {ip}, which is not a public address "
                f"({reason}); webhooks are only sent to the public internet."
            )
    if url.scheme == "http" and not loopback_only:
        raise Invalid("The webhook URL must use https; http is allowed only for loopback hosts.")
    return addresses
