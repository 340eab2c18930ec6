"""User.twofa_enrolled, the Users list's stored enrolment flag, always equals
devices.is_enrolled(user), whichever way an authenticator comes or goes.

Every other test checks it too: conftest.twofa_enrolled_stays_exact compares the flag of every
user with is_enrolled after each test that used the database.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp_webauthn.models import WebAuthnCredential

from clinic_auth.twofactor import devices, services
from clinic_auth.twofactor.models import AuditEvent, EncryptedTOTPDevice
from clinic_auth.twofactor.totp import services as totp_services
from clinic_auth.twofactor.signin_code import services as signin_code_services
from clinic_auth.twofactor.passkeys import services as passkey_services
from tests.conftest import Browser, next_code, totp_for
from tests.softkey import SoftKey
from tests.test_passkeys import add_key
from users import membership
from users.models import User

pytestmark = pytest.mark.django_db


def flag(user: User) -> bool:
    return User.objects.values_list("twofa_enrolled", flat=True).get(pk=user.pk)


def assert_exact(*users: User, expected: bool) -> None:
    for user in users:
        assert devices.is_enrolled(user) is expected
        assert flag(user) is expected


def app(user: User) -> EncryptedTOTPDevice:
    """A confirmed authenticator app, through the set-up services."""
    device = totp_services.totp_setup_begin(user=user)
    totp_services.totp_confirm(user=user, device_id=device.pk, token=totp_for(device), ip_address=None)
    return EncryptedTOTPDevice.objects.get(pk=device.pk)


def signed_in(user: User) -> Client:
    c = Browser()
    c.force_login(user)
    return c


# Each path: (setup, action, expected flag afterwards). setup returns what the action needs.
def _setup_begun(user):
    totp_services.totp_setup_begin(user=user)


def _setup_confirmed(user):
    app(user)


def _key_added_by_the_plugin_view(user):
    assert add_key(signed_in(user), SoftKey()).status_code == 200


def _last_key_removed(user):
    c = signed_in(user)
    add_key(c, SoftKey())
    row = WebAuthnCredential.objects.get(user=user)
    assert c.post(reverse("passkey_remove", args=[row.pk])).status_code == 302


def _key_removed_app_kept(user):
    assert add_key(signed_in(user), SoftKey()).status_code == 200
    app(user)
    passkey_services.passkey_remove(user=user, credential_id=WebAuthnCredential.objects.get(user=user).pk, ip_address=None)


def _reset(user):
    app(user)
    services.twofa_reset(user=user, actor=user, action=AuditEvent.Action.DISABLED_BY_SELF)


def _signin_code_then_new_app(user):
    old = app(user)
    admin = User.objects.create(username="the-admin", clinic=user.clinic, role=User.Role.CLINIC_ADMIN)
    signin_code_services.signin_code_issue(user=user, actor=admin)
    new = totp_services.totp_setup_begin(user=user)
    totp_services.totp_confirm(user=user, device_id=new.pk, token=next_code(new), ip_address=None)
    assert not EncryptedTOTPDevice.objects.filter(pk=old.pk).exists()  # replaced, not added


def _deactivated(user):
    app(user)
    admin = User.objects.create(username="the-admin", clinic=user.clinic, role=User.Role.CLINIC_ADMIN)
    membership.member_deactivate(member=user, actor=admin, ip=None)


def _queryset_delete(user):
    app(user)
    EncryptedTOTPDevice.objects.filter(user=user).delete()


def _unconfirmed_by_save(user):
    device = app(user)
    device.confirmed = False
    device.save()


PATHS = {
    "set-up begun, not confirmed": (_setup_begun, False),
    "set-up confirmed": (_setup_confirmed, True),
    "passkey added by django-otp-webauthn's view": (_key_added_by_the_plugin_view, True),
    "last passkey removed": (_last_key_removed, False),
    "passkey removed, app kept": (_key_removed_app_kept, True),
    "twofa_reset": (_reset, False),
    "one-time sign-in code, then a new app": (_signin_code_then_new_app, True),
    "deactivated": (_deactivated, True),
    "queryset delete": (_queryset_delete, False),
    "device saved unconfirmed": (_unconfirmed_by_save, False),
}


@pytest.mark.parametrize("path", PATHS)
def test_the_flag_follows_every_path(staff, path):
    action, expected = PATHS[path]
    action(staff)
    assert_exact(staff, expected=expected)


def test_a_device_given_to_another_user_moves_the_flag(staff, user_factory):
    other = user_factory()
    device = app(staff)
    device.user = other
    device.save()
    assert_exact(staff, expected=False)
    assert_exact(other, expected=True)


def test_a_stale_user_saved_in_full_keeps_the_flag(staff):
    stale = User.objects.get(pk=staff.pk)  # read before the app is added
    app(staff)
    stale.first_name = "Renamed"
    stale.save()
    assert flag(staff) is True and User.objects.get(pk=staff.pk).first_name == "Renamed"


def test_deleting_a_user_with_devices_works(staff):
    app(staff)
    staff.delete()
    assert not EncryptedTOTPDevice.objects.exists()


def test_checking_a_code_costs_no_extra_query(staff):
    # django-otp saves the whole device after every code (throttle, drift, last use); that
    # changes neither the owner nor `confirmed`, so the flag is not recomputed.
    device = app(staff)
    code = next_code(device)
    device = EncryptedTOTPDevice.objects.get(pk=device.pk)
    with CaptureQueriesContext(connection) as captured:
        assert device.verify_token(code)
    assert len(captured) == 1 and captured[0]["sql"].startswith("UPDATE")


def test_the_migration_backfills_existing_users(staff, user_factory):
    import importlib

    from django.apps import apps

    enrolled = user_factory()
    app(enrolled)
    User.objects.update(twofa_enrolled=False)  # as before the migration
    migration = importlib.import_module("users.migrations.0006_user_twofa_enrolled")
    migration.backfill(apps, None)
    assert flag(enrolled) is True and flag(staff) is False
