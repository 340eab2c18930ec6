"""My Profile, its 2FA section, and turning 2FA off yourself."""

import re

import pytest
from django.urls import reverse

from clinic_auth.twofactor import devices
from clinic_auth.twofactor.models import AuditEvent, RecoveryCode
from tests.conftest import next_code, setup_device, totp_for

PROFILE = reverse("profile")
DISABLE = reverse("two_factor_disable_own")
ONLY_ADMIN = "Only a clinic administrator can reset it."


def two_factor_section(response) -> str:
    html = response.content.decode()
    match = re.search(r'<section class="card" aria-labelledby="two-factor-heading">(.*?)</section>', html, re.S)
    assert match, html
    return match.group(1)


def wrong_code_for(device) -> str:
    valid = {totp_for(device, offset_steps=s) for s in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222") if c not in valid)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, with_pk",
    [
        ("home", None),
        ("profile", None),
        ("password_change", None),
        ("clinic_settings", "clinic"),
        ("clinic_edit", "clinic"),
        ("clinic_audit_log", "clinic"),
        ("user_list", None),
        ("user_detail", "user"),
    ],
)
def test_my_profile_link_is_in_the_header_of_every_page(client, clinic_admin, clinic, name, with_pk):
    client.force_login(clinic_admin)
    args = {None: [], "clinic": [clinic.pk], "user": [clinic_admin.pk]}[with_pk]
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200
    html = response.content.decode()
    header = re.search(r'<header class="site-header">(.*?)</header>', html, re.S).group(1)
    # The navigation comes after the brand in a space-between flex row: the top-right corner.
    assert header.index('class="brand"') < header.index('<nav class="site-nav"')
    # The class and attributes may also mark the current page or section.
    assert re.search(rf'<a href="{PROFILE}" class="profile-link[^"]*"[^>]*>.*?My Profile</a>', header, re.S)
    assert html.count("My Profile</a>") == 1


@pytest.mark.django_db
def test_my_profile_link_is_also_there_for_staff(client, staff):
    client.force_login(staff)
    html = client.get(reverse("home")).content.decode()
    assert f'<a href="{PROFILE}" class="profile-link">' in html


@pytest.mark.django_db
def test_profile_without_2fa_shows_status_and_the_enable_link(client, staff):
    client.force_login(staff)
    response = client.get(PROFILE)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    section = two_factor_section(response)
    assert '<h2 id="two-factor-heading">Two-Factor Authentication</h2>' in section
    assert "Status: <strong" in section and "Not set up</strong>" in section
    link = re.search(r'<a class="button primary" href="([^"]+)">Enable Two-Factor Authentication</a>', section)
    assert link and link.group(1) == reverse("two_factor_setup")
    assert client.get(link.group(1)).status_code == 200
    assert DISABLE not in section


@pytest.mark.django_db
def test_profile_with_2fa_shows_enabled_and_no_enable_link(client, staff, enrol):
    enrol(staff)
    section = two_factor_section(client.get(PROFILE))
    assert '<strong class="status status-on">Enabled</strong>' in section
    assert "Enable Two-Factor Authentication" not in section
    assert f'action="{DISABLE}"' in section
    assert '<label for="id_disable_code">Verification Code</label>' in section


@pytest.mark.django_db
def test_profile_needs_a_login(client):
    response = client.get(PROFILE)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_turning_2fa_off_with_a_current_code(client, staff, enrol, login):
    device, codes = enrol(staff)
    response = client.post(DISABLE, {"code": next_code(device)}, follow=True)
    assert response.redirect_chain == [(PROFILE, 302)]
    html = response.content.decode()
    assert "Two-factor authentication is now disabled for your account." in html
    assert "Not set up</strong>" in two_factor_section(response)
    assert not devices.is_enrolled(staff)
    assert devices.recovery_codes_left(staff) == 0
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DISABLED_BY_SELF, target=staff).count() == 1
    # This session carries on; the next login needs the password only.
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    login(staff)
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_wrong_code_does_not_turn_2fa_off(client, staff, enrol):
    device, _ = enrol(staff)
    response = client.post(DISABLE, {"code": wrong_code_for(device)})
    assert response.status_code == 200
    section = two_factor_section(response)
    assert "That code is not valid." in section
    assert '<label for="id_disable_code">Verification Code</label>' in section
    assert 'id="id_disable_code_error"' in section
    assert devices.is_enrolled(staff)
    assert devices.recovery_codes_left(staff) == 10


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["", "abcdef"])
def test_missing_or_malformed_code_does_not_turn_2fa_off(client, staff, enrol, code):
    enrol(staff)
    response = client.post(DISABLE, {"code": code})
    assert response.status_code == 200
    assert 'class="field field-error"' in two_factor_section(response)
    assert devices.is_enrolled(staff)


@pytest.mark.django_db
def test_a_recovery_code_does_not_turn_2fa_off(client, staff, enrol):
    _, codes = enrol(staff)
    response = client.post(DISABLE, {"code": codes[0]})
    assert response.status_code == 200
    assert devices.is_enrolled(staff)
    assert devices.recovery_codes_left(staff) == 10


@pytest.mark.django_db
def test_the_code_used_to_enable_cannot_disable(client, staff):
    client.force_login(staff)
    client.get(reverse("two_factor_setup"))
    device = setup_device(client)
    used = totp_for(device)
    client.post(reverse("two_factor_setup"), {"code": used})
    response = client.post(DISABLE, {"code": used})
    assert response.status_code == 200
    assert "already been used" in response.content.decode()
    assert devices.is_enrolled(staff)


@pytest.mark.django_db
def test_disable_is_post_only(client, staff, enrol):
    enrol(staff)
    assert client.get(DISABLE).status_code == 405
    assert devices.is_enrolled(staff)


@pytest.mark.django_db
def test_mandatory_2fa_refuses_self_disable_and_says_only_an_admin_can_reset(client, clinic, staff, enrol):
    clinic.mandatory_2fa = True
    clinic.save()
    device, _ = enrol(staff)
    section = two_factor_section(client.get(PROFILE))
    assert ONLY_ADMIN in section
    assert f'action="{DISABLE}"' not in section

    response = client.post(DISABLE, {"code": next_code(device)}, follow=True)
    assert response.redirect_chain == [(PROFILE, 302)]
    html = response.content.decode()
    assert f"Your clinic requires two-factor authentication. {ONLY_ADMIN}" in html
    assert 'class="message message-error"' in html
    assert devices.is_enrolled(staff)
    assert devices.recovery_codes_left(staff) == 10
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DISABLED_BY_SELF).exists()


@pytest.mark.django_db
def test_enabling_again_after_turning_off_uses_a_new_secret(client, staff, enrol):
    device, _ = enrol(staff)
    old_key = device.bin_key
    client.post(DISABLE, {"code": next_code(device)})
    assert not devices.is_enrolled(staff)
    client.get(reverse("two_factor_setup"))
    assert setup_device(client).bin_key != old_key


@pytest.mark.django_db
def test_profile_names_the_disable_action_as_everywhere_else_and_does_not_focus_it(client, staff, enrol):
    enrol(staff)
    section = two_factor_section(client.get(PROFILE))
    assert '<button type="submit" class="button danger">Disable Two-Factor Authentication</button>' in section
    assert "Turn off" not in section
    # The destructive code box must not take the cursor (and scroll the page) on arrival.
    code_input = re.search(r'<input[^>]*id="id_disable_code"[^>]*>', section).group(0)
    assert "autofocus" not in code_input


def profile_in_queries(client, assert_num_queries, queries: int) -> str:
    """My Profile on a second visit (the first may write the session), in exactly `queries` queries."""
    client.get(PROFILE)
    with assert_num_queries(queries):
        return client.get(PROFILE).content.decode()


@pytest.mark.django_db
def test_my_profile_reads_its_methods_in_a_fixed_number_of_queries(client, staff, enrol, django_assert_num_queries):
    enrol(staff)
    # session, user, the app with its recovery-code count, keys, signed-in browsers
    page = profile_in_queries(client, django_assert_num_queries, 5)
    assert "<strong>Authenticator app</strong>" in page and "10 of 10 recovery codes left." in page
    RecoveryCode.objects.filter(device__user=staff).first().delete()
    assert "9 of 10 recovery codes left." in client.get(PROFILE).content.decode()


@pytest.mark.django_db
def test_my_profile_without_2fa_asks_nothing_of_the_devices(client, staff, login, django_assert_num_queries):
    login(staff)
    # session, user, signed-in browsers
    assert "Not set up" in profile_in_queries(client, django_assert_num_queries, 3)
