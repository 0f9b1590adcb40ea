"""Which URLs webhooks may call: https on public addresses only, checked when an endpoint is
saved and again, against the address actually connected to, before every request (SSRF)."""

from __future__ import annotations

import ipaddress
import socket

import anyio
import httpx

from core.errors import Invalid

MAX_URL_LENGTH = 2048


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
        if not ip.is_global or ip.is_multicast:
            raise Invalid(
                f"The webhook host {url.host!r} resolves to {ip}, which is not a public address; "
                "webhooks are only sent to the public internet."
            )
    if url.scheme == "http" and not loopback_only:
        raise Invalid("The webhook URL must use https; http is allowed only for loopback hosts.")
    return addresses
