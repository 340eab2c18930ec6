"""Walk-up actions ask "Confirm it's you" first, and a confirmation runs the one action it names.

An admin's session older than REAUTH_WINDOW (an unlocked computer at the front desk): every action
that changes who can sign in, or with which privileges, waits for a code before it runs; a user
without 2FA is asked for the password before any set-up secret is shown. Each parked action has its
own id; only the matching one runs, Cancel forgets it, and it keeps only the fields its view reads.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from clinic_auth.twofactor import devices
from clinic_auth.twofactor import session as twofa_session
from clinic_auth.twofactor.models import EncryptedTOTPDevice
from tests.conftest import PASSWORD, Browser, next_code
from tests.test_shared_computer import asked_to_confirm, later
from users.models import Invitation, User, UserSession


@pytest.fixture
def admin(clinic_admin, enrol):
    c = Browser()
    device, _ = enrol(clinic_admin, http_client=c)
    return c, device


def confirm_with_code(c, confirm, device):
    return c.post(confirm, {"code": next_code(device)})


@pytest.mark.django_db
def test_changing_a_role_waits_for_the_code(admin, staff, settings, time_machine):
    c, device = admin
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    confirm = asked_to_confirm(c.post(reverse("user_change_role", args=[staff.pk]), {"role": User.Role.CLINIC_ADMIN}))
    staff.refresh_from_db()
    assert staff.role == User.Role.STAFF
    assert "change the role of Sam Staff" in c.get(confirm).content.decode()
    confirm_with_code(c, confirm, device)
    staff.refresh_from_db()
    assert staff.role == User.Role.CLINIC_ADMIN


@pytest.mark.django_db
def test_reactivating_waits_for_the_code(admin, staff, settings, time_machine):
    c, device = admin
    User.objects.filter(pk=staff.pk).update(is_active=False)
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    confirm = asked_to_confirm(c.post(reverse("user_reactivate", args=[staff.pk])))
    assert not User.objects.get(pk=staff.pk).is_active
    confirm_with_code(c, confirm, device)
    assert User.objects.get(pk=staff.pk).is_active


@pytest.mark.django_db
def test_resending_and_revoking_an_invitation_wait_for_the_code(admin, settings, time_machine, django_capture_on_commit_callbacks):
    c, device = admin
    fields = {"first_name": "Joy", "last_name": "Nurse", "email": "joy@example.com", "username": "", "role": "staff"}
    with django_capture_on_commit_callbacks(execute=True):
        assert c.post(reverse("user_invite"), fields).status_code == 302
    member = User.objects.get(email="joy@example.com")
    mail.outbox.clear()
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)

    with django_capture_on_commit_callbacks(execute=True):
        confirm = asked_to_confirm(c.post(reverse("user_invitation_resend", args=[member.pk])))
    assert mail.outbox == [] and Invitation.objects.filter(user=member).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        confirm_with_code(c, confirm, device)
    assert len(mail.outbox) == 1 and Invitation.objects.filter(user=member).count() == 2

    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 31)  # stale again, and a fresh code step
    confirm = asked_to_confirm(c.post(reverse("user_invitation_revoke", args=[member.pk])))
    assert Invitation.objects.filter(user=member, revoked_at__isnull=True).count() == 1
    confirm_with_code(c, confirm, device)
    assert Invitation.objects.filter(user=member, revoked_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_signing_a_member_out_everywhere_waits_for_the_code(admin, staff, settings, time_machine):
    c, device = admin
    member = Browser()
    assert member.post(reverse("login"), {"username": staff.username, "password": PASSWORD}).status_code == 302
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    confirm = asked_to_confirm(c.post(reverse("sessions_end_member", args=[staff.pk]), {"session": "all"}))
    assert member.get(reverse("home")).status_code == 200
    confirm_with_code(c, confirm, device)
    assert member.get(reverse("home")).status_code == 302
    assert not UserSession.objects.filter(user=staff, ended_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_user_without_2fa_gives_the_password_before_any_secret_is_shown(staff, settings, time_machine):
    c = Browser()
    assert c.post(reverse("login"), {"username": staff.username, "password": PASSWORD}).status_code == 302
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)

    setup = reverse("two_factor_setup")
    confirm = asked_to_confirm(c.get(setup))
    page = c.get(confirm).content.decode()
    assert 'type="password"' in page and "set up two-factor authentication" in page
    assert "otpauth" not in page and "<svg" not in page
    assert not EncryptedTOTPDevice.objects.filter(user=staff).exists()  # no secret was even made

    assert c.post(confirm, {"password": "not it"}).status_code == 200
    assert not EncryptedTOTPDevice.objects.filter(user=staff).exists()
    done = c.post(confirm, {"password": PASSWORD})
    assert done.status_code == 302 and done.url == setup
    assert "Verification Code" in c.get(setup).content.decode()


@pytest.mark.django_db
def test_right_after_signing_in_the_set_up_needs_no_second_password(staff):
    c = Browser()
    c.post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    page = c.get(reverse("two_factor_setup"))
    assert page.status_code == 200 and "Verification Code" in page.content.decode()


@pytest.mark.django_db
def test_confirming_one_parked_action_runs_that_one_only(admin, user_factory, enrol, settings, time_machine):
    c, device = admin
    sam = user_factory(first_name="Sam", last_name="Other", username="sam2")
    enrol(sam, http_client=Browser())
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    deactivate = asked_to_confirm(c.post(reverse("user_deactivate", args=[sam.pk])))
    disable = asked_to_confirm(c.post(reverse("user_disable_2fa", args=[sam.pk])))  # a second tab
    assert deactivate != disable
    assert "deactivate Sam Other" in c.get(deactivate).content.decode()

    confirm_with_code(c, deactivate, device)

    sam.refresh_from_db()
    assert not sam.is_active
    assert devices.is_enrolled(sam)  # the other tab's action did not run
    # ... and still waits under its own id, naming itself.
    assert "disable two-factor authentication for Sam Other" in c.get(disable).content.decode()


@pytest.mark.django_db
def test_cancel_forgets_the_parked_action(admin, staff, settings, time_machine):
    c, device = admin
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    confirm = asked_to_confirm(c.post(reverse("user_deactivate", args=[staff.pk])))
    page = c.get(confirm).content.decode()
    assert re.search(r'<button[^>]*name="cancel"[^>]*>\s*Cancel\s*</button>', page)

    cancelled = c.post(confirm, {"cancel": "1"}, follow=True)
    assert "Cancelled" in cancelled.content.decode()
    assert "There is nothing waiting to be confirmed." in c.post(confirm, {"code": next_code(device)}, follow=True).content.decode()
    assert User.objects.get(pk=staff.pk).is_active


@pytest.mark.django_db
def test_a_parked_action_keeps_only_the_fields_its_view_reads(admin, staff, settings, time_machine):
    c, _ = admin
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    asked_to_confirm(c.post(reverse("user_change_role", args=[staff.pk]), {"role": User.Role.CLINIC_ADMIN, "junk": "x" * 2000}))
    (parked,) = c.session[twofa_session.PENDING_ACTIONS_KEY].values()
    assert parked["data"] == {"role": [User.Role.CLINIC_ADMIN]}


@pytest.mark.django_db
def test_a_big_body_is_refused_not_parked(admin, staff, settings, time_machine):
    c, _ = admin
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    response = c.post(reverse("user_deactivate", args=[staff.pk]), {"junk": "x" * 100_000})
    assert response.status_code == 413
    assert not c.session.get(twofa_session.PENDING_ACTIONS_KEY)
    assert User.objects.get(pk=staff.pk).is_active
