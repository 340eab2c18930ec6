"""URLs for tests/test_django_otp_semantics.py: the app's, and two views that read request.user as a
library does."""

from django.db import connection
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django_otp.decorators import otp_required

SEEN = {}


def probe(request):
    """What a view (or a library such as django-otp-webauthn) reads off request.user."""
    with CaptureQueriesContext(connection) as queries:
        SEEN["verified"] = request.user.is_verified()
    SEEN["queries_for_is_verified"] = len(queries)
    with CaptureQueriesContext(connection) as queries:
        SEEN["device"] = request.user.otp_device
        SEEN["device_again"] = request.user.otp_device
    SEEN["queries_for_device"] = len(queries)
    return HttpResponse("probe")


@otp_required
def needs_otp(request):
    return HttpResponse("verified only")


urlpatterns = [
    path("probe/", probe),
    path("needs-otp/", needs_otp),
    path("", include("clinic_auth.urls")),
]
