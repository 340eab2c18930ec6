from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response that does not choose its own caching.

    Pages show patients' clinic staff and their settings on shared front-desk computers: the
    Back button after logout must not bring them back. Only the static files (WhiteNoise sets
    their caching) choose otherwise. CSP and Permissions-Policy come from django-csp and
    django-permissions-policy (settings).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Cache-Control" not in response.headers:
            add_never_cache_headers(response)
        return response
