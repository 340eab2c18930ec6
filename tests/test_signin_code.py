"""A one-time sign-in code an admin issues for a member who lost their phone."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clinic_auth.twofactor.models import AdminIssuedCodeDevice, AuditEvent, EncryptedTOTPDevice
from clinic_auth.twofactor.signin_code import services as signin_code_services
from tests.conftest import next_code, setup_device, totp_for

CHALLENGE = reverse("two_factor_challenge")
SETUP = reverse("two_factor_setup")
MEMBER_IP = "198.51.100.23"
ADMIN_IP = "203.0.113.5"


@pytest.fixture
def admin_client(clinic_admin, enrol):
    c = Client(REMOTE_ADDR=ADMIN_IP)
    enrol(clinic_admin, http_client=c)
    return c


@pytest.fixture
def old_app(staff, enrol):
    """The member's authenticator app (on the phone they lost)."""
    device, _ = enrol(staff, http_client=Client())
    return device


SHOWN = re.compile(r'<p class="signin-code"[^>]*>(\d{4}) (\d{4})</p>')


def issue(admin_client, member) -> str:
    response = admin_client.post(reverse("user_signin_code", args=[member.pk]))
    assert response.status_code == 302 and response.url == reverse("user_signin_code", args=[member.pk]) + "?issued=1"
    shown = SHOWN.search(admin_client.get(response.url).content.decode())
    return shown.group(1) + shown.group(2)


def member_at_challenge(member, login) -> Client:
    c = Client(REMOTE_ADDR=MEMBER_IP)
    response = login(member, http_client=c)
    assert response.status_code == 302
    assert c.get(reverse("home")).url.startswith(CHALLENGE)
    return c


@pytest.mark.django_db
def test_member_page_offers_it_beside_disable(admin_client, staff, old_app):
    html = admin_client.get(reverse("user_detail", args=[staff.pk])).content.decode()
    assert "Disable Two-Factor Authentication" in html
    assert f'action="{reverse("user_signin_code", args=[staff.pk])}"' in html
    assert "Issue a one-time sign-in code" in html
    confirm = admin_client.get(reverse("user_signin_code", args=[staff.pk]))
    assert confirm.status_code == 200 and "Issue the code" in confirm.content.decode()
    assert not AdminIssuedCodeDevice.objects.exists()  # the GET changes nothing


@pytest.mark.django_db
def test_issued_code_is_8_digits_shown_once_stored_hashed_and_audited(admin_client, clinic_admin, staff, old_app,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        code = issue(admin_client, staff)
    assert re.fullmatch(r"\d{8}", code)
    device = AdminIssuedCodeDevice.objects.get(user=staff)
    assert code not in device.code_hash and device.code_hash.startswith("pbkdf2_sha256_recovery$")
    assert timedelta(minutes=59) < device.expires_at - timezone.now() <= timedelta(hours=1)
    event = AuditEvent.objects.get(action=AuditEvent.Action.SIGNIN_CODE_ISSUED)
    assert (event.actor, event.target, event.ip_address) == (clinic_admin, staff, ADMIN_IP)
    (email,) = [m for m in mail.outbox if m.to == [staff.email]][-1:]
    assert "one-time sign-in code was issued" in email.subject and code not in email.body
    # Nothing keeps the code to show it again.
    assert code not in admin_client.get(reverse("user_detail", args=[staff.pk])).content.decode()


@pytest.mark.django_db
def test_admin_cannot_issue_for_themselves(admin_client, clinic_admin):
    response = admin_client.post(reverse("user_signin_code", args=[clinic_admin.pk]), follow=True)
    assert "You cannot issue a one-time sign-in code for yourself." in response.content.decode()
    assert not AdminIssuedCodeDevice.objects.exists()
    with pytest.raises(signin_code_services.SelfIssueRefused):
        signin_code_services.signin_code_issue(user=clinic_admin, actor=clinic_admin)


@pytest.mark.django_db
def test_only_for_members_with_2fa_of_this_clinic_and_only_by_admins(admin_client, client, staff, user_factory,
                                                                     clinic_factory, old_app):
    no_2fa = user_factory()
    assert admin_client.post(reverse("user_signin_code", args=[no_2fa.pk])).status_code == 302
    outsider = user_factory(clinic=clinic_factory(name="Elsewhere"))
    assert admin_client.post(reverse("user_signin_code", args=[outsider.pk])).status_code == 404
    client.force_login(no_2fa)
    assert client.post(reverse("user_signin_code", args=[staff.pk])).status_code == 403
    assert not AdminIssuedCodeDevice.objects.exists()


@pytest.mark.django_db
def test_code_signs_in_once_then_new_app_replaces_the_old(admin_client, staff, old_app, login,
                                                          django_capture_on_commit_callbacks):
    code = issue(admin_client, staff)
    member = member_at_challenge(staff, login)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = member.post(CHALLENGE, {"code": f"{code[:4]} {code[4:]}"})
    assert response.status_code == 302 and response.url == SETUP
    used = AuditEvent.objects.get(action=AuditEvent.Action.SIGNIN_CODE_USED)
    assert (used.target, used.ip_address, used.detail) == (staff, MEMBER_IP, "issued by admin")
    assert [m.subject for m in mail.outbox] == ["ClinicAuth: your one-time sign-in code was used"]
    assert MEMBER_IP in mail.outbox[0].body
    page = member.get(SETUP)
    assert page.status_code == 200
    assert "Your old app keeps working until you enter a code from the new one" in page.content.decode()
    # The old app still works until the new one is confirmed.
    assert EncryptedTOTPDevice.objects.filter(pk=old_app.pk, confirmed=True).exists()
    new_app = setup_device(member)
    response = member.post(SETUP, {"code": totp_for(new_app)}, follow=True)
    assert "Your new authenticator app is set up." in response.content.decode()
    assert list(EncryptedTOTPDevice.objects.filter(user=staff).values_list("pk", "confirmed")) == [(new_app.pk, True)]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.APP_REPLACED, target=staff).count() == 1
    assert not AdminIssuedCodeDevice.objects.filter(user=staff).exists()
    # The code does not work a second time.
    again = member_at_challenge(staff, login)
    assert "That code is not valid" in again.post(CHALLENGE, {"code": code}).content.decode()
    # And the new app does.
    assert again.post(CHALLENGE, {"code": next_code(new_app)}).status_code == 302


@pytest.mark.django_db
def test_old_app_keeps_working_if_the_new_one_is_never_confirmed(admin_client, staff, old_app, login):
    code = issue(admin_client, staff)
    member = member_at_challenge(staff, login)
    member.post(CHALLENGE, {"code": code})
    member.get(SETUP)  # starts a set-up, never confirmed
    later = member_at_challenge(staff, login)
    assert later.post(CHALLENGE, {"code": next_code(old_app)}).status_code == 302
    # Without the code, a member with an app is still sent away from set-up as before.
    assert later.get(SETUP).url == reverse("profile")


@pytest.mark.django_db
def test_used_code_cannot_be_used_again(admin_client, staff, old_app, login):
    code = issue(admin_client, staff)
    assert member_at_challenge(staff, login).post(CHALLENGE, {"code": code}).status_code == 302
    second = member_at_challenge(staff, login).post(CHALLENGE, {"code": code})
    assert second.status_code == 200 and "That code is not valid" in second.content.decode()


@pytest.mark.django_db
def test_code_expires_after_an_hour(admin_client, staff, old_app, login):
    code = issue(admin_client, staff)
    member = member_at_challenge(staff, login)
    later = timezone.now() + timedelta(hours=1, seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = member.post(CHALLENGE, {"code": code})
    assert response.status_code == 200 and "That code is not valid" in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SIGNIN_CODE_USED).exists()


@pytest.mark.django_db
def test_issuing_again_replaces_the_unused_code(admin_client, staff, old_app, login):
    first = issue(admin_client, staff)
    second = issue(admin_client, staff)
    assert AdminIssuedCodeDevice.objects.filter(user=staff).count() == 1
    member = member_at_challenge(staff, login)
    if first != second:
        assert "That code is not valid" in member.post(CHALLENGE, {"code": first}).content.decode()
    assert member.post(CHALLENGE, {"code": second}).url == SETUP


@pytest.mark.django_db
def test_wrong_codes_lock_like_other_codes(admin_client, staff, old_app, login, settings):
    code = issue(admin_client, staff)
    member = member_at_challenge(staff, login)
    wrong = "12345678" if code != "12345678" else "87654321"
    for _ in range(settings.CLINICAUTH_CODE_LOCKOUT_FAILURES):
        assert "That code is not valid" in member.post(CHALLENGE, {"code": wrong}).content.decode()
    locked = member.post(CHALLENGE, {"code": code})
    assert "Too many incorrect codes" in locked.content.decode()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SIGNIN_CODE_USED).exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CODE_THROTTLED, target=staff).count() == 1
    # The app's own counter is separate: the member can still use their app.
    assert member.post(CHALLENGE, {"code": next_code(old_app)}).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("issued", [True, False], ids=["a code was issued", "no code was issued"])
def test_wrong_codes_answer_the_same_whether_or_not_a_code_was_issued(admin_client, staff, old_app, login, settings, issued):
    """With the password alone, quick wrong 8-digit codes: the same answers, the same throttle
    delay, the same lock, the same hash work, code issued or not."""
    settings.CLINICAUTH_RECOVERY_THROTTLE_FACTOR = 1  # django-otp's delay after each failure
    if issued:
        issue(admin_client, staff)
    member = member_at_challenge(staff, login)
    hashed = []
    real_verify = signin_code_services.RecoveryCodeHasher.verify
    with mock.patch.object(
        signin_code_services.RecoveryCodeHasher, "verify", lambda self, *a: hashed.append(1) or real_verify(self, *a)
    ):
        first = member.post(CHALLENGE, {"code": "13572468"}).content.decode()
        second = member.post(CHALLENGE, {"code": "24681357"}).content.decode()
    assert "That code is not valid" in first
    assert "Wait a second and try again" in second.replace("&#x27;", "'")  # the delay, in both cases
    assert hashed == [1]  # the first was hashed; the second refused by the throttle before any hash
    assert staff.recoverycodedevice_set.get().throttling_failure_count == 1


@pytest.mark.django_db
def test_issuing_a_code_lifts_a_lock_on_one_time_codes(admin_client, staff, old_app, login, settings):
    member = member_at_challenge(staff, login)
    for _ in range(settings.CLINICAUTH_CODE_LOCKOUT_FAILURES):
        member.post(CHALLENGE, {"code": "ABCD-EFGH-JK", "method": "recovery"})
    code = issue(admin_client, staff)
    assert member.post(CHALLENGE, {"code": code}).status_code == 302


@pytest.mark.django_db
def test_disabling_2fa_removes_the_code(admin_client, staff, old_app, clinic_admin):
    issue(admin_client, staff)
    admin_client.post(reverse("user_disable_2fa", args=[staff.pk]))
    assert not AdminIssuedCodeDevice.objects.filter(user=staff).exists()


@pytest.mark.django_db
def test_eight_digits_are_read_as_a_signin_code():
    from clinic_auth.twofactor.forms import ChallengeForm

    form = ChallengeForm({"code": "1234 5678"})
    assert form.is_valid()
    method, token = form.cleaned_data["code"]
    assert (method.name, token) == ("signin", "12345678")
    assert ChallengeForm({"code": "123 456"}).is_valid()
    assert not ChallengeForm({"code": "1234567"}).is_valid()


@pytest.mark.django_db
def test_issuing_asks_the_admin_to_confirm_it_is_them_first(admin_client, clinic_admin, staff, old_app, time_machine,
                                                          settings):
    """Confirm it's you: a session that has not proved its factor recently confirms first;
    then the code is issued and shown once, with nothing to click again."""
    from clinic_auth.twofactor import devices

    time_machine.move_to(timezone.now() + timedelta(seconds=settings.CLINICAUTH_REAUTH_WINDOW + 1), tick=False)
    response = admin_client.post(reverse("user_signin_code", args=[staff.pk]))
    confirm = response.url
    assert response.status_code == 302 and confirm.startswith(reverse("reauthenticate") + "?action=")
    assert not AdminIssuedCodeDevice.objects.exists()
    assert "issue a one-time sign-in code for Sam Staff" in admin_client.get(confirm).content.decode()
    done = admin_client.post(confirm, {"code": next_code(devices.confirmed_totp_device(clinic_admin))})
    assert done.status_code == 302
    assert SHOWN.search(admin_client.get(done.url).content.decode())
    assert AdminIssuedCodeDevice.objects.filter(user=staff, issued_by=clinic_admin).count() == 1


def test_reloading_the_shown_code_issues_nothing_and_offers_a_new_one(admin_client, staff, old_app, login):
    code = issue(admin_client, staff)
    page = reverse("user_signin_code", args=[staff.pk]) + "?issued=1"
    reloaded = admin_client.get(page).content.decode()
    assert not SHOWN.search(reloaded) and code[:4] not in reloaded
    assert "was shown once and is not shown again" in reloaded and ">Issue a new code</button>" in reloaded
    assert AdminIssuedCodeDevice.objects.filter(user=staff).count() == 1
    # The code read to the member before the reload still signs them in.
    member = member_at_challenge(staff, login)
    assert member.post(CHALLENGE, {"code": code}).status_code == 302


def test_a_code_stashed_for_one_member_is_not_shown_on_anothers_page(admin_client, staff, user_factory, enrol, old_app):
    other = user_factory(username="other")
    enrol(other, http_client=Client())
    response = admin_client.post(reverse("user_signin_code", args=[staff.pk]))
    elsewhere = admin_client.get(reverse("user_signin_code", args=[other.pk]) + "?issued=1").content.decode()
    assert not SHOWN.search(elsewhere)
    assert SHOWN.search(admin_client.get(response.url).content.decode())  # still there for its member
