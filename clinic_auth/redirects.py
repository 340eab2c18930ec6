"""Where a `next` parameter may send someone: a path on this site, never anything else."""

from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

MAX_NEXT_LENGTH = 2000


def is_safe_next(candidate: str, request) -> bool:
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


def safe_next(request, default: str = "home") -> str:
    """The `next` parameter if it is a path on this site, else a safe default."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    return candidate if is_safe_next(candidate, request) else reverse(default)
