"""Bad input: every form fuzzed with Hypothesis through the test client.

Login, challenge, set-up, Edit Clinic, user search and both disable-2FA POSTs get
arbitrary text (any unicode, NULs, control characters, very long strings, and a
few well-formed-but-wrong codes). No input may raise (the test client re-raises
what would be a 500), and a rejected form writes nothing: every table except
sessions is compared row by row before and after.

The only writes a refused submission may make are the ones that are the point
of refusing it: a password failure counted in LoginThrottle, and a well-formed
wrong code counted on the device's throttle (with its audit event).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django.apps import apps
from django.urls import reverse
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clinic_auth.twofactor import devices
from clinic_auth.twofactor.forms import ChallengeForm
from clinic_auth.twofactor.totp.forms import TOTPCodeForm
from clinic_auth.twofactor.models import AuditEvent
from clinics.forms import ClinicForm
from clinics.models import Clinic
from tests.conftest import setup_device
from users.models import LoginThrottle, User

FUZZ = hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Arbitrary text, biased towards what breaks forms and databases.
junk = st.one_of(
    st.text(),  # any unicode except surrogates, NULs and control characters included
    st.text(min_size=33, max_size=400),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=8), st.integers(500, 3_000)),  # very long (under Django's 2.5 MB body limit)
    st.sampled_from(
        [
            "",
            "\x00",
            "123\x00456",
            "\x00" * 64,
            "000000",  # well-formed, wrong
            " 000 000 ",
            "٠٠٠٠٠٠",  # Arabic-Indic digits
            "０００００００",  # full-width digits
            "ABCDE-FGHJK",  # a well-formed recovery code
            "abcde fghjk",
            "<script>alert(1)</script>",
            "' OR '1'='1",
            "%00",
            "\u202e\u200b\ufeff",
            "𝟎𝟎𝟎𝟎𝟎𝟎",
        ]
    ),
)
extra_fields = st.dictionaries(junk, junk, max_size=3)
# Always tried, whatever Hypothesis draws: a NUL, a very long string, non-ASCII digits.
NUL, LONG, NON_ASCII = "12\x0034", "9" * 20_000, "١٢٣٤٥٦"

# Device throttle columns: a well-formed wrong code is counted there on purpose.
THROTTLE_COLUMNS = {"throttling_failure_count", "throttling_failure_timestamp"}
COUNTED_FAILURE_ACTIONS = {AuditEvent.Action.CODE_THROTTLED, AuditEvent.Action.CODE_REPLAYED}


def snapshot(*, allow_code_failure: bool = False) -> dict[str, list[tuple]]:
    """Every row of every table but sessions and the password throttle (checked separately)."""
    rows = {}
    for model in apps.get_models():
        if model._meta.label in {"sessions.Session", LoginThrottle._meta.label}:
            continue
        columns = [field.attname for field in model._meta.concrete_fields]
        queryset = model._base_manager.order_by("pk")
        if allow_code_failure:
            columns = [c for c in columns if c not in THROTTLE_COLUMNS]
            if model is AuditEvent:
                queryset = queryset.exclude(action__in=COUNTED_FAILURE_ACTIONS)
        rows[model._meta.label] = list(queryset.values_list(*columns))
    return rows


def post(client, url: str, data: dict):
    """A urlencoded form post, as a browser sends it (any key or value survives the encoding)."""
    return client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")


def assert_refused_without_writes(response, before, *, allow_code_failure: bool = False) -> None:
    assert response.status_code == 200, response.status_code
    assert snapshot(allow_code_failure=allow_code_failure) == before


# --- the password step ------------------------------------------------------


@pytest.mark.django_db
@FUZZ
@given(username=st.one_of(st.just("staff"), junk), password=junk, extra=extra_fields)
@example(username="staff\x00", password=NUL, extra={})
@example(username=LONG, password=LONG, extra={"\x00": NON_ASCII})
def test_login_form_fuzz(client, staff, username, password, extra):
    LoginThrottle.objects.all().delete()  # every example reaches the password check
    before = snapshot()
    response = post(client, reverse("login"), {**extra, "username": username, "password": password})
    assert_refused_without_writes(response, before)
    assert "_auth_user_id" not in client.session


# --- the challenge ----------------------------------------------------------


@pytest.fixture
def at_challenge(client, staff, enrol, login):
    device, codes = enrol(staff)
    client.post(reverse("logout"))
    assert login(staff).status_code == 302
    return device


@pytest.mark.django_db
@FUZZ
@given(code=junk, method=st.one_of(st.sampled_from(["", "recovery"]), junk), next_url=junk, extra=extra_fields)
@example(code=NUL, method="recovery", next_url=NUL, extra={})
@example(code=LONG, method="", next_url=LONG, extra={})
@example(code=NON_ASCII, method=NUL, next_url="", extra={NUL: NUL})
def test_challenge_form_fuzz(client, at_challenge, code, method, next_url, extra):
    data = {**extra, "code": code, "method": method, "next": next_url}
    well_formed = ChallengeForm(data, recovery=method == "recovery").is_valid()
    before = snapshot(allow_code_failure=well_formed)
    response = post(client, reverse("two_factor_challenge"), data)
    assert_refused_without_writes(response, before, allow_code_failure=well_formed)
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert client.get(reverse("home")).url.startswith(reverse("two_factor_challenge"))


# --- set-up -----------------------------------------------------------------


@pytest.fixture
def at_setup(client, staff):
    client.force_login(staff)
    assert client.get(reverse("two_factor_setup")).status_code == 200  # creates the pending device
    return setup_device(client)


@pytest.mark.django_db
@FUZZ
@given(code=junk, next_url=junk, extra=extra_fields)
@example(code=NUL, next_url=NUL, extra={})
@example(code=LONG, next_url="", extra={})
@example(code=NON_ASCII, next_url="", extra={})
def test_setup_form_fuzz(client, staff, at_setup, code, next_url, extra):
    data = {**extra, "code": code, "next": next_url}
    well_formed = TOTPCodeForm(data).is_valid()
    before = snapshot(allow_code_failure=well_formed)
    response = post(client, reverse("two_factor_setup"), data)
    assert_refused_without_writes(response, before, allow_code_failure=well_formed)
    assert not devices.is_enrolled(staff)


# --- Edit Clinic --------------------------------------------------------------


@pytest.fixture
def verified_admin(client, clinic_admin, enrol):
    enrol(clinic_admin)  # stays verified if a fuzzed form turns Mandatory 2FA on
    return clinic_admin


@pytest.mark.django_db
@FUZZ
@given(name=junk, address=junk, phone=junk, mandatory=st.one_of(st.sampled_from(["", "on", "false"]), junk))
@example(name=NUL, address="", phone="", mandatory="on")
@example(name="New name", address=NUL, phone=NUL, mandatory="")
@example(name=LONG, address=LONG, phone=NON_ASCII, mandatory=LONG)
def test_edit_clinic_form_fuzz(client, verified_admin, name, address, phone, mandatory):
    clinic = verified_admin.clinic
    data = {"name": name, "address": address, "phone": phone}
    if mandatory:
        data["mandatory_2fa"] = mandatory
    valid = ClinicForm(data, instance=Clinic.objects.get(pk=clinic.pk)).is_valid()
    before = snapshot()
    response = post(client, reverse("clinic_edit", args=[clinic.pk]), data)
    if not valid:
        assert_refused_without_writes(response, before)
        return
    assert response.status_code == 302
    saved = Clinic.objects.get(pk=clinic.pk)
    assert (saved.name, saved.address, saved.phone) == (name.strip(), address.strip(), phone.strip())


# --- user search ----------------------------------------------------------------


@pytest.mark.django_db
@FUZZ
@given(q=junk, sort=junk, page=junk, extra=extra_fields)
@example(q=NUL, sort=NUL, page=NUL, extra={})
@example(q=LONG, sort=LONG, page=LONG, extra={})
def test_user_search_fuzz(client, verified_admin, user_factory, q, sort, page, extra):
    before = snapshot()
    response = client.get(reverse("user_list"), {**extra, "q": q, "sort": sort, "page": page})
    assert response.status_code == 200
    assert snapshot() == before


# --- turning 2FA off ------------------------------------------------------------


@pytest.mark.django_db
@FUZZ
@given(code=junk, extra=extra_fields)
@example(code=NUL, extra={})
@example(code=LONG, extra={})
@example(code=NON_ASCII, extra={})
def test_self_disable_form_fuzz(client, staff, enrol, code, extra):
    if not devices.is_enrolled(staff):
        enrol(staff)
    data = {**extra, "code": code}
    well_formed = TOTPCodeForm(data).is_valid()
    before = snapshot(allow_code_failure=well_formed)
    response = post(client, reverse("two_factor_disable_own"), data)
    assert_refused_without_writes(response, before, allow_code_failure=well_formed)
    assert devices.is_enrolled(staff)


@pytest.fixture
def disable_targets(verified_admin, user_factory, clinic_factory):
    """Members for whom the admin's disable POST must be refused and change nothing."""
    other_clinic_member = user_factory(clinic=clinic_factory(name="Elsewhere"))
    without_2fa = user_factory()
    return {
        "self": verified_admin.pk,
        "other clinic": other_clinic_member.pk,
        "no 2FA": without_2fa.pk,
        "missing": User.objects.order_by("-pk").first().pk + 1000,
    }


@pytest.mark.django_db
@FUZZ
@given(target=st.sampled_from(["self", "other clinic", "no 2FA", "missing"]), extra=extra_fields)
@example(target="self", extra={"code": NUL})
def test_admin_disable_post_fuzz(client, disable_targets, target, extra):
    before = snapshot()
    response = post(client, reverse("user_disable_2fa", args=[disable_targets[target]]), extra)
    assert response.status_code in {302, 404}
    assert snapshot() == before
