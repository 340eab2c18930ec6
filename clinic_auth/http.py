"""What every app reads off a request the same way: the client's address, whether a script
asked (JSON), and where a `next` parameter may send someone."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from ipware import get_client_ip

MAX_NEXT_LENGTH = 2000


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address (django-ipware). X-Forwarded-For counts only behind TRUSTED_PROXY_COUNT
    proxies, and then only the hop the nearest trusted proxy saw: the entries before it are the
    client's own words. With no trusted proxy, REMOTE_ADDR alone."""
    if request is None:
        return None
    proxies = settings.CLINICAUTH_TRUSTED_PROXY_COUNT
    address = None
    if proxies > 0:
        # The last proxy is REMOTE_ADDR, not a hop of the header: ipware counts only the hops in it.
        address, _routable = get_client_ip(
            request, proxy_count=proxies - 1, request_header_order=["HTTP_X_FORWARDED_FOR"], strict=False
        )
    if address is None:
        address = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


# One IPv6 client is given a whole /64 (RFC 6177 and every ISP's practice): its addresses are counted
# as one, or a throttle would be 2**64 throttles.
IPV6_CLIENT_PREFIX = 64


def throttle_address(ip: str | None) -> str:
    """The name a throttle counts an address under: an IPv4 address itself, an IPv6 address's /64
    (an IPv4-mapped one as its IPv4 address), "unknown" for none."""
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or request.headers.get("X-Requested-With") == "XMLHttpRequest"


def is_safe_next(candidate: str, request: HttpRequest) -> bool:
    """A path on this site ("/users/?q=x"), nothing else: not a word, a view name or another host.

    Only a path starting with one "/" is taken, so Django's redirect() never
    tries to reverse it as a view name (that raised NoReverseMatch, a 500).
    """
    return (
        0 < len(candidate) <= MAX_NEXT_LENGTH
        and candidate.startswith("/")
        and candidate.isprintable()
        and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    )


def safe_next(request: HttpRequest, default: str = "home") -> str:
    """The `next` parameter if it is a path on this site, else a safe default."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    return candidate if is_safe_next(candidate, request) else reverse(default)
