"""Passkeys and security keys as a second factor (django-otp-webauthn).

Every response is built by a software authenticator (tests/softkey.py) and verified by the
server's real code; nothing in the plugin is mocked.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp_webauthn.models import WebAuthnCredential

from clinic_auth.twofactor import devices
from clinic_auth.twofactor import session as twofa_session
from clinic_auth.twofactor.models import AuditEvent, EncryptedTOTPDevice
from clinic_auth.twofactor.passkeys import services as passkey_services
from tests.conftest import Browser, PASSWORD, next_code
from tests.softkey import YUBIKEY_5, SoftKey
from users.models import User

REG_BEGIN = reverse("otp_webauthn:credential-registration-begin")
REG_COMPLETE = reverse("otp_webauthn:credential-registration-complete")
AUTH_BEGIN = reverse("otp_webauthn:credential-authentication-begin")
AUTH_COMPLETE = reverse("otp_webauthn:credential-authentication-complete")
CHALLENGE = reverse("two_factor_challenge")
SETUP = reverse("two_factor_setup")
CODES = reverse("two_factor_recovery_codes")
Action = AuditEvent.Action


def post_json(client: Client, url: str, data: dict | None = None):
    return client.post(url, data=json.dumps(data or {}), content_type="application/json")


def add_key(client: Client, key: SoftKey, **kwargs):
    begin = post_json(client, REG_BEGIN)
    assert begin.status_code == 200, begin.content
    return post_json(client, REG_COMPLETE, key.register(begin.json(), **kwargs))


def sign_in_with_key(client: Client, key: SoftKey, **kwargs):
    begin = post_json(client, AUTH_BEGIN)
    assert begin.status_code == 200, begin.content
    return post_json(client, AUTH_COMPLETE, key.assertion(begin.json(), **kwargs))


def password_only(user: User) -> Client:
    c = Client()
    assert c.post(reverse("login"), {"username": user.username, "password": PASSWORD}).status_code == 302
    return c


@pytest.fixture
def mandatory(clinic):
    clinic.mandatory_2fa = True
    clinic.save()
    return clinic


@pytest.fixture
def verified(staff, enrol) -> Client:
    """The staff member, enrolled with the app and past the code."""
    c = Client()
    enrol(staff, http_client=c)
    return c


@pytest.fixture
def key_only_user(staff, mandatory) -> tuple[User, SoftKey]:
    """Staff of a mandatory clinic who enrolled with a passkey alone, through the forced set-up."""
    key = SoftKey()
    c = password_only(staff)
    assert c.get(reverse("home")).url.startswith(SETUP)
    assert add_key(c, key).status_code == 200
    return staff, key


# --- adding a key ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_options_ask_for_a_second_factor_key_with_no_attestation(verified):
    options = post_json(verified, REG_BEGIN).json()
    assert options["rp"] == {"name": "ClinicAuth", "id": "localhost"}
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    # Not "required": plain USB security keys that keep no passkey must work as a second factor.
    assert options["authenticatorSelection"]["residentKey"] == "preferred"


@pytest.mark.django_db
def test_a_key_added_from_my_profile_is_named_listed_audited_and_emailed(
    verified, staff, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = add_key(verified, SoftKey(aaguid=YUBIKEY_5, transports=("usb",)))

    assert response.status_code == 200
    assert response.json()["redirect_url"] == reverse("profile")
    (key,) = WebAuthnCredential.objects.filter(user=staff)
    assert key.name == "YubiKey 5 Series"
    event = AuditEvent.objects.get(action=Action.KEY_ADDED)
    assert (event.actor, event.target, event.detail) == (staff, staff, "YubiKey 5 Series")
    (message,) = mail.outbox
    assert "YubiKey 5 Series" in message.body and message.to == [staff.email]

    profile = verified.get(reverse("profile")).content.decode()
    assert "<strong>Authenticator app</strong>" in profile
    assert "<strong>YubiKey 5 Series</strong>" in profile and "not used yet" in profile
    assert re.search(r"<button[^>]*>Add a passkey or security key</button>", profile)
    # The key itself is never shown.
    assert key.credential_id_sha256 not in profile and key.public_key.hex()[:16] not in profile
    # A second method keeps the recovery codes the user saved.
    assert devices.recovery_codes_left(staff) == 10


@pytest.mark.django_db
def test_unknown_authenticators_get_a_plain_name_the_user_can_change(verified, staff):
    add_key(verified, SoftKey())
    key = WebAuthnCredential.objects.get(user=staff)
    assert key.name == "Passkey"
    response = verified.post(reverse("passkey_rename", args=[key.pk]), {"name": "  Front desk key  "}, follow=True)
    assert "Renamed to “Front desk key”." in response.content.decode()
    key.refresh_from_db()
    assert key.name == "Front desk key"
    blank = verified.post(reverse("passkey_rename", args=[key.pk]), {"name": "   "})
    assert blank.status_code == 200 and "This field is required." in blank.content.decode()


@pytest.mark.django_db
def test_first_method_a_key_under_mandatory_2fa_completes_set_up(key_only_user):
    staff, _ = key_only_user
    assert devices.is_enrolled(staff)
    assert not EncryptedTOTPDevice.objects.filter(user=staff).exists()  # the unused app set-up went
    assert devices.recovery_codes_left(staff) == 10
    assert User.objects.get(pk=staff.pk).last_login is not None


@pytest.mark.django_db
def test_my_profile_of_a_key_only_user_counts_their_recovery_codes(key_only_user, django_assert_num_queries):
    """Without an app the recovery codes are still counted, in the same query that looks for the app."""
    staff, key = key_only_user
    c = password_only(staff)
    assert sign_in_with_key(c, key).status_code == 200
    c.get(reverse("profile"))
    # session, user, the app (none) with the recovery-code count, keys, signed-in browsers
    with django_assert_num_queries(5):
        profile = c.get(reverse("profile")).content.decode()
    assert "10 of 10 recovery codes left." in profile
    assert "<strong>Passkey</strong>" in profile and "<strong>Authenticator app</strong>" not in profile
    assert "Add an authenticator app" in profile


@pytest.mark.django_db
def test_forced_set_up_with_a_key_goes_to_the_recovery_codes_then_in(staff, mandatory):
    c = password_only(staff)
    page = c.get(SETUP).content.decode()
    assert "Use a passkey or security key instead" in page
    assert '<span id="passkey-registration-placeholder"></span>' in page
    response = add_key(c, SoftKey())
    assert response.json()["redirect_url"] == CODES
    codes = c.get(CODES)
    assert len(re.findall(r"<li><code>[A-Z0-9]{5}-[A-Z0-9]{5}</code></li>", codes.content.decode())) == 10
    assert c.get(reverse("home")).status_code == 200
    assert c.session.get(DEVICE_ID_SESSION_KEY)


@pytest.mark.django_db
def test_a_session_at_the_code_challenge_cannot_add_a_key(staff, enrol):
    enrol(staff, http_client=Client())
    c = password_only(staff)
    response = post_json(c, REG_BEGIN)
    assert response.status_code == 302 and response.url.startswith(CHALLENGE)
    response = c.post(REG_BEGIN, HTTP_ACCEPT="application/json")
    assert response.status_code == 403 and response.json()["error"] == "two_factor_required"
    assert not WebAuthnCredential.objects.exists()


@pytest.mark.django_db
def test_a_key_made_for_another_origin_or_relying_party_is_not_added(verified, staff):
    assert add_key(verified, SoftKey(), origin="https://evil.example").status_code in (400, 422)
    assert add_key(verified, SoftKey(), rp_id="evil.example").status_code in (400, 422)
    assert not WebAuthnCredential.objects.filter(user=staff).exists()


# --- signing in with a key ------------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_in_with_a_key_alone_satisfies_mandatory_2fa(key_only_user):
    staff, key = key_only_user
    c = password_only(staff)
    assert c.get(reverse("home")).url.startswith(CHALLENGE)  # enrolled: the challenge, not set-up
    page = c.get(CHALLENGE).content.decode()
    assert "Use your passkey or security key" in page
    assert '<span id="passkey-verification-placeholder"></span>' in page

    response = sign_in_with_key(c, key)

    assert response.status_code == 200, response.content
    assert response.json()["redirect_url"] == reverse("home")
    assert c.get(reverse("home")).status_code == 200
    key_row = WebAuthnCredential.objects.get(user=staff)
    assert key_row.last_used_at is not None and key_row.sign_count == key.sign_count


@pytest.mark.django_db
def test_sign_in_with_a_key_keeps_a_safe_next_and_rotates_the_session(key_only_user):
    staff, key = key_only_user
    c = password_only(staff)
    before = c.session.session_key
    begin = post_json(c, AUTH_BEGIN).json()
    response = c.post(
        AUTH_COMPLETE + "?next=/profile/", data=json.dumps(key.assertion(begin)), content_type="application/json"
    )
    assert response.json()["redirect_url"] == "/profile/"
    assert c.session.session_key != before
    evil = password_only(staff)
    begin = post_json(evil, AUTH_BEGIN).json()
    response = evil.post(
        AUTH_COMPLETE + "?next=https://evil.example/", data=json.dumps(key.assertion(begin)), content_type="application/json"
    )
    assert response.json()["redirect_url"] == reverse("home")


def refused(client: Client, response, code: str | None = None) -> None:
    assert response.status_code in (400, 403, 404, 422), (response.status_code, response.content)
    if code:
        assert response.json()["code"] == code
    assert client.get(reverse("home")).url.startswith(CHALLENGE)


@pytest.mark.django_db
def test_another_users_key_is_refused_and_audited(key_only_user, user_factory, mandatory):
    _, key = key_only_user
    other = user_factory(username="other")
    other_key = SoftKey()
    add_key(password_only(other), other_key)
    c = password_only(other)
    refused(c, sign_in_with_key(c, key), "credential_user_mismatch")
    event = AuditEvent.objects.get(action=Action.KEY_REFUSED)
    assert event.target == other and "credential_user_mismatch" in event.detail


@pytest.mark.django_db
def test_an_assertion_for_another_origin_or_relying_party_is_refused(key_only_user):
    staff, key = key_only_user
    c = password_only(staff)
    refused(c, sign_in_with_key(c, key, origin="https://evil.example"))
    refused(c, sign_in_with_key(c, key, rp_id="evil.example"))
    assert AuditEvent.objects.filter(action=Action.KEY_REFUSED, target=staff).count() == 2


@pytest.mark.django_db
def test_a_replayed_challenge_is_refused(key_only_user):
    staff, key = key_only_user
    c = password_only(staff)
    begin = post_json(c, AUTH_BEGIN).json()
    assertion = key.assertion(begin)
    # Signed in once, then signed out: the same assertion again, in the same browser.
    assert post_json(c, AUTH_COMPLETE, assertion).status_code == 200
    c.post(reverse("logout"))
    assert c.post(reverse("login"), {"username": staff.username, "password": PASSWORD}).status_code == 302
    refused(c, post_json(c, AUTH_COMPLETE, assertion))
    # Nor against a fresh challenge: the signed challenge is the old one.
    post_json(c, AUTH_BEGIN)
    refused(c, post_json(c, AUTH_COMPLETE, assertion))
    assert AuditEvent.objects.filter(action=Action.KEY_REFUSED, target=staff).count() == 2


@pytest.mark.django_db
def test_a_sign_count_that_goes_backwards_is_refused_as_a_cloned_key(key_only_user):
    staff, key = key_only_user
    c = password_only(staff)
    assert sign_in_with_key(c, key).status_code == 200
    assert sign_in_with_key(c2 := password_only(staff), key).status_code == 200
    clone = password_only(staff)
    refused(clone, sign_in_with_key(clone, key, sign_count=1))
    assert "sign count" in AuditEvent.objects.get(action=Action.KEY_REFUSED).detail.lower()
    assert c2.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_an_expired_challenge_is_refused(key_only_user, settings):
    staff, key = key_only_user
    c = password_only(staff)
    begin = post_json(c, AUTH_BEGIN).json()
    session = c.session
    issued = session[twofa_session.PASSKEY_ISSUED_KEY]
    session[twofa_session.PASSKEY_ISSUED_KEY] = {**issued, "authenticate": int(time.time()) - settings.OTP_WEBAUTHN_TIMEOUT_SECONDS - 1}
    session.save()
    refused(c, post_json(c, AUTH_COMPLETE, key.assertion(begin)), "challenge_expired")
    assert AuditEvent.objects.filter(action=Action.KEY_REFUSED, target=staff).count() == 1


@pytest.mark.django_db
def test_a_signed_in_session_cannot_use_the_sign_in_ceremony(verified, staff):
    response = post_json(verified, AUTH_BEGIN)
    assert response.status_code == 403 and response.json()["code"] == "not_at_this_step"


@pytest.mark.django_db
def test_the_app_code_still_works_beside_a_key(verified, staff, enrol):
    add_key(verified, SoftKey())
    device = EncryptedTOTPDevice.objects.get(user=staff, confirmed=True)
    c = password_only(staff)
    page = c.get(CHALLENGE).content.decode()
    assert "Use your passkey or security key" in page and 'name="code"' in page
    assert c.post(CHALLENGE, {"code": next_code(device)}).status_code == 302
    assert c.get(reverse("home")).status_code == 200


# --- removing keys, and an admin's reset ---------------------------------------------------------------


@pytest.mark.django_db
def test_removing_a_key_is_audited_and_emailed(verified, staff, django_capture_on_commit_callbacks):
    add_key(verified, SoftKey())
    key = WebAuthnCredential.objects.get(user=staff)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = verified.post(reverse("passkey_remove", args=[key.pk]), follow=True)
    assert "Passkey or security key “Passkey” removed." in response.content.decode()
    assert not WebAuthnCredential.objects.filter(user=staff).exists()
    assert devices.is_enrolled(staff)  # the app is still there
    assert AuditEvent.objects.get(action=Action.KEY_REMOVED).detail == "Passkey"
    assert [m.subject for m in mail.outbox] == ["ClinicAuth: passkey or security key removed"]


@pytest.mark.django_db
def test_the_last_key_cannot_be_removed_where_2fa_is_required(key_only_user):
    staff, key = key_only_user
    c = Browser()
    c.force_login(staff)
    # Force a verified session for this user: sign in with the key.
    c = password_only(staff)
    sign_in_with_key(c, key)
    row = WebAuthnCredential.objects.get(user=staff)
    response = c.post(reverse("passkey_remove", args=[row.pk]), follow=True)
    assert "your clinic requires two-factor authentication" in response.content.decode()
    assert WebAuthnCredential.objects.filter(pk=row.pk).exists()


@pytest.mark.django_db
def test_removing_the_last_key_where_2fa_is_optional_turns_it_off(staff):
    c = Browser()
    c.force_login(staff)
    add_key(c, SoftKey())
    row = WebAuthnCredential.objects.get(user=staff)
    response = c.post(reverse("passkey_remove", args=[row.pk]), follow=True)
    assert "two-factor authentication is now off" in response.content.decode()
    assert not devices.is_enrolled(staff) and devices.recovery_codes_left(staff) == 0
    assert c.get(reverse("home")).status_code == 200  # this session carries on


@pytest.mark.django_db
def test_someone_elses_key_cannot_be_renamed_or_removed(verified, staff, user_factory):
    other = user_factory()
    oc = Browser()
    oc.force_login(other)
    add_key(oc, SoftKey())
    theirs = WebAuthnCredential.objects.get(user=other)
    assert "no longer exists" in verified.post(reverse("passkey_remove", args=[theirs.pk]), follow=True).content.decode()
    verified.post(reverse("passkey_rename", args=[theirs.pk]), {"name": "Mine now"})
    theirs.refresh_from_db()
    assert theirs.name == "Passkey"


@pytest.mark.django_db
def test_an_admins_disable_removes_keys_and_the_key_stops_working(key_only_user, clinic_admin, enrol):
    staff, key = key_only_user
    admin = Client()
    enrol(clinic_admin, http_client=admin)
    detail = admin.get(reverse("user_detail", args=[staff.pk])).content.decode()
    assert "Disable Two-Factor Authentication" in detail
    admin.post(reverse("user_disable_2fa", args=[staff.pk]))
    assert not WebAuthnCredential.objects.filter(user=staff).exists()
    event = AuditEvent.objects.get(action=Action.DISABLED_BY_ADMIN)
    assert event.detail == "1 passkey or security key; 10 recovery codes"
    c = password_only(staff)
    assert c.get(reverse("home")).url.startswith(SETUP)  # mandatory: set up again
    begin = post_json(c, AUTH_BEGIN)
    assert begin.status_code == 302  # the sign-in ceremony is not even offered at set-up


@pytest.mark.django_db
def test_users_list_shows_each_members_methods_and_counts_key_users_as_enrolled(
    key_only_user, clinic_admin, enrol, user_factory
):
    staff, _ = key_only_user
    admin = Client()
    enrol(clinic_admin, http_client=admin)
    add_key(admin, SoftKey())
    add_key(admin, SoftKey())
    user_factory(username="nobody")
    page = admin.get(reverse("user_list")).content.decode()
    assert "3 of 3 users have 2FA enabled" not in page  # "nobody" has none
    assert re.search(r"2 of 3 users have 2FA enabled", page)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        username = re.search(r"<td>(admin|staff|nobody)</td>", row)
        summary = re.search(r'<span class="methods-summary">([^<]*)</span>', row)
        if username:
            rows[username.group(1)] = summary.group(1)
    assert rows == {"admin": "App, 2 keys", "staff": "1 key", "nobody": "—"}


@pytest.mark.django_db
def test_removing_the_last_key_reads_the_clinics_flag_as_it_is_now(staff):
    """The request's user comes with its clinic; the service still asks the database, inside its lock,
    so Mandatory 2FA switched on a moment ago keeps the last key."""

    c = Browser()
    c.force_login(staff)
    add_key(c, SoftKey())
    row = WebAuthnCredential.objects.get(user=staff)
    user = User.objects.select_related("clinic").get(pk=staff.pk)
    assert user.clinic.mandatory_2fa is False  # as loaded with the request
    type(user.clinic).objects.filter(pk=user.clinic_id).update(mandatory_2fa=True)
    with pytest.raises(passkey_services.LastMethodRequired):
        passkey_services.passkey_remove(user=user, credential_id=row.pk, ip_address=None)
    assert WebAuthnCredential.objects.filter(pk=row.pk).exists()
