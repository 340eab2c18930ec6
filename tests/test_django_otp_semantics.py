"""request.user.is_verified() and request.user.otp_device mean what django-otp documents, with
django-otp's own session record as the one source of truth, and no query until the device is read."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from clinic_auth.twofactor.middleware import TwoFactorMiddleware
from tests.conftest import next_code

from tests.otp_semantics_urls import SEEN


@pytest.fixture(autouse=True)
def with_probe_urls(settings):
    settings.ROOT_URLCONF = "tests.otp_semantics_urls"
    SEEN.clear()


@pytest.mark.django_db
def test_a_verified_session_is_verified_and_its_device_is_read_only_when_asked_for(client, staff, enrol, login):
    device, _ = enrol(staff)
    client.logout()
    login(staff)
    assert client.post(reverse("two_factor_challenge"), {"code": next_code(device)}).status_code == 302
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id  # django-otp's own record

    assert client.get("/probe/").status_code == 200
    assert SEEN["verified"] is True and SEEN["queries_for_is_verified"] == 0
    assert SEEN["device"] == device and SEEN["device_again"] is SEEN["device"]
    assert SEEN["queries_for_device"] == 1  # loaded once, when first read
    assert client.get("/needs-otp/").content == b"verified only"  # django-otp's own decorator agrees


@pytest.mark.django_db
def test_before_the_code_the_user_is_not_verified_and_has_no_device(client, staff, enrol, login):
    device, _ = enrol(staff)
    client.logout()
    login(staff)
    request = RequestFactory().get("/probe/")
    request.session = client.session
    request.user = staff
    TwoFactorMiddleware(lambda r: HttpResponse())(request)
    assert request.user.is_verified() is False and request.user.otp_device is None
    assert DEVICE_ID_SESSION_KEY not in client.session


@pytest.mark.django_db
def test_a_user_without_2fa_is_not_verified_and_django_otps_decorator_says_so(client, staff, login):
    login(staff)
    assert client.get("/probe/").status_code == 200
    assert SEEN["verified"] is False and SEEN["device"] is None
    assert client.get("/needs-otp/").status_code == 302  # otp_required sends an unverified user away


@pytest.mark.django_db
def test_a_device_removed_since_reads_as_none(client, staff, enrol, login):
    device, _ = enrol(staff)
    client.logout()
    login(staff)
    client.post(reverse("two_factor_challenge"), {"code": next_code(device)})
    from clinic_auth.twofactor.models import EncryptedTOTPDevice

    other = EncryptedTOTPDevice.objects.create(user=staff, name="other", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = other.persistent_id
    session.save()
    other.delete()
    assert client.get("/probe/").status_code == 200
    assert SEEN["device"] is None
