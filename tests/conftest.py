import base64
import time

import pyotp
import pytest
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clinics.models import Clinic
from users.models import User, UserSession

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests that exercise throttling turn it back on explicitly.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.CLINICAUTH_RECOVERY_THROTTLE_FACTOR = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "http://testserver"  # the links e-mails carry


@pytest.fixture(autouse=True)
def twofa_enrolled_stays_exact(request):
    """After every test that used the database, User.twofa_enrolled equals devices.is_enrolled for
    every user: a path that adds, confirms or removes an authenticator without the flag following
    (a queryset update(), a bulk_create, a new service) fails the test that takes it."""
    marker = request.node.get_closest_marker("django_db")
    uses_db = "db" in request.fixturenames or (marker is not None and not marker.kwargs.get("transaction"))
    if uses_db and "transactional_db" not in request.fixturenames and "live_server" not in request.fixturenames:
        request.getfixturevalue("db")  # so the check below runs before the test's rollback
    else:
        uses_db = False
    yield
    if uses_db:
        from django.db.models import BooleanField, ExpressionWrapper

        from clinic_auth.twofactor import devices

        enrolled = ExpressionWrapper(devices.enrolled_q(), output_field=BooleanField())
        stale = list(User.objects.annotate(now=enrolled).exclude(twofa_enrolled=F("now")).values_list("username", flat=True))
        assert not stale, f"User.twofa_enrolled is stale for {stale}"


class Browser(Client):
    """Django's test Client, whose force_login leaves the session as a real sign-in leaves it: the
    password proved just now (the set-up page and sensitive actions ask again after REAUTH_WINDOW;
    tests of that move the clock, tests/test_shared_computer.py's `later`)."""

    def force_login(self, user, backend=None):
        super().force_login(user, backend)
        proved_just_now(self)
        # ... and is listed as signed in, as a completed sign-in is.
        UserSession.objects.filter(session_key=self.session.session_key).update(completed_at=timezone.now())


@pytest.fixture
def client():
    return Browser()


@pytest.fixture
def clinic_factory(db):
    counter = iter(range(1, 10_000))

    def make(**fields) -> Clinic:
        fields.setdefault("name", f"Clinic {next(counter)}")
        return Clinic.objects.create(**fields)

    return make


@pytest.fixture
def clinic(clinic_factory):
    return clinic_factory(name="Demo Clinic")


@pytest.fixture
def user_factory(db, clinic):
    counter = iter(range(1, 100_000))

    def make(*, clinic=clinic, role=User.Role.STAFF, **fields) -> User:
        n = next(counter)
        fields.setdefault("username", f"user{n}")
        fields.setdefault("email", f"user{n}@example.com")
        fields.setdefault("first_name", "Test")
        fields.setdefault("last_name", f"User{n}")
        user = User(clinic=clinic, role=role, **fields)
        user.set_password(PASSWORD)
        user.save()
        return user

    return make


@pytest.fixture
def staff(user_factory):
    return user_factory(username="staff", first_name="Sam", last_name="Staff")


@pytest.fixture
def clinic_admin(user_factory):
    return user_factory(username="admin", role=User.Role.CLINIC_ADMIN, first_name="Dana", last_name="Admin")


def totp_for(device, *, offset_steps: int = 0) -> str:
    """The current code for a device, computed independently with pyotp."""
    secret = base64.b32encode(device.bin_key).decode()
    return pyotp.TOTP(secret).at(time.time() + offset_steps * 30)


def next_code(device) -> str:
    """A code the device accepts now and has not used yet.

    Codes count once per 30 s step, and a code accepted one step early or late
    shifts the device's window (drift), so pick from the window the server uses.
    """
    device.refresh_from_db()
    now_t = int(time.time()) // 30
    for k in (0, 1):
        step = now_t + device.drift + k
        if step > device.last_t:
            return totp_for(device, offset_steps=step - now_t)
    raise AssertionError("no unused code left in this 30 s window")


def setup_device(http_client):
    """The authenticator the set-up page showed to this client's session (each session has its own)."""
    from clinic_auth.twofactor import session as twofa_session
    from clinic_auth.twofactor.models import EncryptedTOTPDevice

    return EncryptedTOTPDevice.objects.get(pk=http_client.session[twofa_session.SETUP_KEY], confirmed=False)


@pytest.fixture
def enrol(client):
    """Enrol a user through the real set-up page; returns (device, recovery_codes)."""

    def do(user, *, http_client=None):
        c = http_client or client
        c.force_login(user)
        proved_just_now(c)  # as a real sign-in does (a plain Client's force_login does not)
        response = c.get(reverse("two_factor_setup"))
        assert response.status_code == 200
        device = setup_device(c)
        response = c.post(reverse("two_factor_setup"), {"code": totp_for(device)})
        assert response.status_code == 302 and response.url == reverse("two_factor_recovery_codes"), response
        response = c.get(response.url)
        assert response.status_code == 200, response.content
        device.refresh_from_db()
        assert device.confirmed
        return device, response.context["codes"]

    return do


@pytest.fixture
def login(client):
    """Password step through the real login form."""

    def do(user, *, http_client=None, password=PASSWORD, follow=False):
        c = http_client or client
        return c.post(reverse("login"), {"username": user.username, "password": password}, follow=follow)

    return do


def proved_just_now(http_client) -> None:
    """A force_login'd session that also proved its factor moments ago, as a real sign-in does
    (so a sensitive action runs without "Confirm it's you"; tests/test_shared_computer.py tests that page)."""
    import time

    from clinic_auth.twofactor import session as twofa_session

    session = http_client.session
    session[twofa_session.REAUTH_AT_KEY] = int(time.time())
    session.save()
