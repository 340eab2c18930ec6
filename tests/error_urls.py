"""The app's URLs plus two that fail on purpose, for tests/test_error_pages.py only."""

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.urls import path

from clinic_auth.urls import urlpatterns as app_urlpatterns


@login_not_required
def server_error(request):
    raise RuntimeError("a bug, on purpose")


@login_not_required
def bad_request(request):
    raise SuspiciousOperation("a damaged request, on purpose")


urlpatterns = [*app_urlpatterns, path("test-500/", server_error), path("test-400/", bad_request)]
