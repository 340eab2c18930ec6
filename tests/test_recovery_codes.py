"""Ten single-use recovery codes, shown once, stored as hashes."""

import re
from urllib.parse import unquote

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django.db import connection
from django.urls import reverse

from clinic_auth.twofactor import devices
from clinic_auth.twofactor.models import RecoveryCode
from tests.conftest import setup_device, totp_for

CHALLENGE = reverse("two_factor_challenge")
REGENERATE = reverse("two_factor_recovery_codes")
CODE_FORMAT = re.compile(r"[A-HJ-NP-Z2-9]{5}-[A-HJ-NP-Z2-9]{5}")


def shown_codes(response) -> list[str]:
    html = response.content.decode()
    block = re.search(r'<ul class="recovery-codes" id="recovery-codes">(.*?)</ul>', html, re.S).group(1)
    return re.findall(r"<li><code>([^<]+)</code></li>", block)


def everything_in_the_database() -> str:
    """Every row of every table, as text: what a database dump would hold."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


def profile_count_text(client) -> str:
    html = client.get(reverse("profile")).content.decode()
    return re.search(r"<p>(\d+ of 10 recovery codes left\.)</p>", html).group(1)


@pytest.fixture
def enrolled(client, staff, enrol):
    """Enrolled and verified in `client`; returns (device, codes)."""
    return enrol(staff)


@pytest.fixture
def pending(client, staff, enrolled, login):
    """Signed out and back in with the password: the challenge is next."""
    client.post(reverse("logout"))
    login(staff)
    assert client.get(reverse("home")).url.startswith(CHALLENGE)
    return enrolled


@pytest.mark.django_db
def test_enabling_shows_ten_distinct_codes_once(client, staff, enrolled):
    _, codes = enrolled
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(CODE_FORMAT.fullmatch(code) for code in codes)
    assert devices.recovery_codes_left(staff) == 10
    # Never shown again: not on the profile, and the set-up page is closed now.
    profile = client.get(reverse("profile")).content.decode()
    assert not any(code in profile for code in codes)
    assert client.get(reverse("two_factor_setup")).status_code == 302


@pytest.mark.django_db
def test_codes_page_lists_them_with_copy_print_and_download(client, staff):
    client.force_login(staff)
    client.get(reverse("two_factor_setup"))
    device = setup_device(client)
    response = client.post(reverse("two_factor_setup"), {"code": totp_for(device)}, follow=True)
    assert "no-store" in response["Cache-Control"]
    codes = shown_codes(response)
    assert len(codes) == 10
    html = response.content.decode()
    href = re.search(
        r'<a class="button" download="[^"]+\.txt" href="data:text/plain;charset=utf-8,([^"]*)">Download codes</a>', html
    )
    assert href, "download link missing"
    # The file says whose codes they are, then lists them one a line.
    lines = unquote(href.group(1)).split("\n")
    assert lines[:3] == ["ClinicAuth recovery codes", f"Clinic: {staff.clinic.name}", f"Username: {staff.username}"]
    assert re.fullmatch(r"Created: \d{1,2} \w{3} \d{4}, \d\d:\d\d UTC", lines[3])
    assert [line for line in lines if re.fullmatch(r"[A-Z0-9]{5}-[A-Z0-9]{5}", line)] == codes
    assert lines[-len(codes) - 1 :] == [*codes, ""]
    assert re.search(r'<button type="button"[^>]*data-copy-target="recovery-codes-text"[^>]*>Copy codes</button>', html)
    assert re.search(r'<button type="button"[^>]*data-print[^>]*>Print codes</button>', html)
    text = re.search(r'<textarea id="recovery-codes-text"[^>]*>([^<]*)</textarea>', html).group(1)
    assert text.split("\n") == codes


@pytest.mark.django_db
def test_codes_are_stored_only_as_hashes(staff, enrolled):
    _, codes = enrolled
    dump = everything_in_the_database()
    for code in codes:
        assert code not in dump
        assert code.replace("-", "") not in dump
        assert code.lower() not in dump
    hashes = list(RecoveryCode.objects.filter(device__user=staff).values_list("code_hash", flat=True))
    assert len(hashes) == 10
    assert all(h.startswith("pbkdf2_sha256_recovery$") for h in hashes)
    assert len(set(hashes)) == 10  # salted


@pytest.mark.django_db
def test_recovery_code_in_the_verification_code_field_works_once(client, staff, pending, login):
    _, codes = pending
    response = client.post(CHALLENGE, {"code": codes[0]}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("home")
    assert response.status_code == 200
    assert "You used a recovery code. 9 recovery codes left." in response.content.decode()
    assert devices.recovery_codes_left(staff) == 9
    assert profile_count_text(client) == "9 of 10 recovery codes left."

    client.post(reverse("logout"))
    login(staff)
    response = client.post(CHALLENGE, {"code": codes[0]})
    assert response.status_code == 200
    assert "That recovery code didn" in response.content.decode()  # refused, in recovery-code words
    assert client.get(reverse("home")).url.startswith(CHALLENGE)
    assert devices.recovery_codes_left(staff) == 9


@pytest.mark.django_db
def test_recovery_method_page_takes_a_recovery_code_once(client, staff, pending, login):
    _, codes = pending
    page = client.get(CHALLENGE, {"method": "recovery"})
    html = page.content.decode()
    assert "<h1>Two-Factor Authentication</h1>" in html
    assert '<label for="id_code">Recovery Code</label>' in html
    assert '<input type="hidden" name="method" value="recovery">' in html
    assert "no-store" in page["Cache-Control"]
    response = client.post(CHALLENGE + "?method=recovery", {"code": codes[3], "method": "recovery"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200

    client.post(reverse("logout"))
    login(staff)
    response = client.post(CHALLENGE, {"code": codes[3], "method": "recovery"})
    assert response.status_code == 200
    assert client.get(reverse("home")).url.startswith(CHALLENGE)


@pytest.mark.django_db
def test_recovery_code_may_be_typed_in_lower_case_without_the_dash(client, staff, pending):
    _, codes = pending
    typed = codes[1].replace("-", " ").lower()
    assert client.post(CHALLENGE, {"code": typed}).status_code == 302
    assert devices.recovery_codes_left(staff) == 9


@pytest.mark.django_db
def test_wrong_recovery_code_is_refused_and_uses_up_nothing(client, staff, pending):
    _, codes = pending
    wrong = next(c for c in ("ABCDE-FGHJK", "ZZZZZ-ZZZZZ") if c not in codes)
    response = client.post(CHALLENGE, {"code": wrong, "method": "recovery"})
    assert response.status_code == 200
    assert 'class="field field-error"' in response.content.decode()
    assert devices.recovery_codes_left(staff) == 10
    assert DEVICE_ID_SESSION_KEY not in client.session


@pytest.mark.django_db
def test_recovery_code_login_rotates_the_session_key(client, pending):
    _, codes = pending
    before = client.session.session_key
    client.post(CHALLENGE, {"code": codes[2]})
    assert client.session.session_key != before


@pytest.mark.django_db
def test_regenerating_replaces_the_codes_and_the_old_ones_stop_working(client, staff, enrolled, login):
    device, old = enrolled
    profile = client.get(reverse("profile")).content.decode()
    assert f'<form method="post" action="{REGENERATE}">' in profile
    assert "10 of 10 recovery codes left." in profile

    response = client.post(REGENERATE, follow=True)
    assert response.redirect_chain == [(REGENERATE, 302)]
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "New recovery codes created. Your old codes no longer work." in response.content.decode()
    new = shown_codes(response)
    assert len(new) == 10 and not set(new) & set(old)
    assert devices.recovery_codes_left(staff) == 10
    assert devices.confirmed_totp_device(staff) == device  # the app keeps working

    client.post(reverse("logout"))
    login(staff)
    assert client.post(CHALLENGE, {"code": old[0]}).status_code == 200
    assert client.get(reverse("home")).url.startswith(CHALLENGE)
    assert client.post(CHALLENGE, {"code": new[0]}).status_code == 302
    assert client.get(reverse("home")).status_code == 200
    assert profile_count_text(client) == "9 of 10 recovery codes left."


@pytest.mark.django_db
def test_regenerating_after_using_some_gives_ten_again(client, staff, pending):
    _, codes = pending
    client.post(CHALLENGE, {"code": codes[0]})
    assert profile_count_text(client) == "9 of 10 recovery codes left."
    client.post(REGENERATE)
    assert profile_count_text(client) == "10 of 10 recovery codes left."


@pytest.mark.django_db
def test_opening_the_codes_page_by_address_never_makes_codes(client, staff, enrolled):
    hashes = set(RecoveryCode.objects.filter(device__user=staff).values_list("code_hash", flat=True))
    response = client.get(REGENERATE)
    assert response.status_code == 200
    assert "already shown once" in response.content.decode()
    assert not CODE_FORMAT.search(response.content.decode())
    assert set(RecoveryCode.objects.filter(device__user=staff).values_list("code_hash", flat=True)) == hashes


@pytest.mark.django_db
def test_regenerate_without_2fa_creates_nothing(client, staff):
    client.force_login(staff)
    response = client.post(REGENERATE)
    assert response.status_code == 302 and response.url == reverse("profile")
    assert RecoveryCode.objects.filter(device__user=staff).count() == 0


@pytest.mark.django_db
def test_wrong_recovery_code_then_immediate_right_one_is_throttled(client, staff, pending, settings):
    settings.CLINICAUTH_RECOVERY_THROTTLE_FACTOR = 1
    _, codes = pending
    wrong = next(c for c in ("ABCDE-FGHJK", "ZZZZZ-ZZZZZ") if c not in codes)
    client.post(CHALLENGE, {"code": wrong})
    response = client.post(CHALLENGE, {"code": codes[0]})
    assert response.status_code == 200
    assert "Wait a second and try again." in response.content.decode()
    assert devices.recovery_codes_left(staff) == 10
    assert DEVICE_ID_SESSION_KEY not in client.session


@pytest.mark.django_db
def test_the_count_left_is_told_after_each_use_down_to_the_last(client, staff, pending, login):
    _, codes = pending
    for used, code in enumerate(codes[:9], start=1):
        if used > 1:
            client.post(reverse("logout"))
            login(staff)
        response = client.post(CHALLENGE, {"code": code}, follow=True)
        left = 10 - used
        expected = "1 recovery code left." if left == 1 else f"{left} recovery codes left."
        assert f"You used a recovery code. {expected}" in response.content.decode()
    assert profile_count_text(client) == "1 of 10 recovery codes left."


@pytest.mark.django_db
def test_codes_page_names_product_clinic_user_and_date_for_the_printout(client, staff):
    client.force_login(staff)
    client.get(reverse("two_factor_setup"))
    response = client.post(reverse("two_factor_setup"), {"code": totp_for(setup_device(client))}, follow=True)
    owner = re.search(r'<p class="codes-owner">([^<]+)</p>', response.content.decode()).group(1)
    assert re.fullmatch(
        rf"ClinicAuth · {staff.clinic.name} · {staff.username} · created \d{{1,2}} \w{{3}} \d{{4}}, \d\d:\d\d UTC", owner
    ), owner


@pytest.mark.django_db
def test_continue_asks_whether_the_codes_were_saved(client, staff):
    client.force_login(staff)
    client.get(reverse("two_factor_setup"))
    response = client.post(reverse("two_factor_setup"), {"code": totp_for(setup_device(client))}, follow=True)
    assert re.search(
        r'<span data-confirm="Have you saved your codes\? They will not be shown again."><a class="button primary" href="[^"]+">Continue</a></span>',
        response.content.decode(),
    )


@pytest.mark.django_db
def test_generate_new_codes_warns_before_it_acts(client, staff, enrolled):
    html = client.get(reverse("profile")).content.decode()
    warning = html.index("makes the codes you have now stop working")
    button = html.index(">Generate new recovery codes</button>")
    assert warning < button
    assert 'aria-describedby="regenerate-warning">Generate new recovery codes</button>' in html
