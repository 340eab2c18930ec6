"""The set-up page, its QR code, and confirming the device."""

import base64
import io
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from django_otp import DEVICE_ID_SESSION_KEY
import zxingcpp
from django.urls import reverse
from PIL import Image

from clinic_auth.twofactor import devices, services
from clinic_auth.twofactor.forms import ChallengeForm
from clinic_auth.twofactor.models import AuditEvent
from tests.conftest import next_code, setup_device, totp_for

SETUP = reverse("two_factor_setup")
CHALLENGE = reverse("two_factor_challenge")
SETUP_ERROR = "That code did not match."


def qr_text(response) -> str:
    """Decode the QR image embedded in the page, as a phone camera would."""
    html = response.content.decode()
    src = re.search(r'<img class="qr-code" src="([^"]+)"', html).group(1)
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), "the QR code must be inline, never a file or a URL"
    image = Image.open(io.BytesIO(base64.b64decode(src[len(prefix):])))
    assert image.format == "PNG"
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    return results[0].text


def manual_key(response) -> str:
    return re.search(r'<code id="manual-key">([^<]+)</code>', response.content.decode()).group(1)


def uri_parts(uri: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    query = {key: values[0] for key, values in parse_qs(parts.query, strict_parsing=True).items()}
    return unquote(parts.path.lstrip("/")), query


@pytest.fixture
def on_setup(client, staff):
    client.force_login(staff)
    return client


@pytest.mark.django_db
def test_setup_page_has_the_steps_apps_field_and_button(on_setup):
    response = on_setup.get(SETUP)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Set up Two-Factor Authentication</h1>" in html
    for app in ("Google Authenticator", "Microsoft Authenticator", "Twilio Authy"):
        assert f"<li>{app}</li>" in html
    assert '<label for="id_code">Verification Code</label>' in html
    assert re.search(r'<button type="submit"[^>]*>Enable 2FA</button>', html)


@pytest.mark.django_db
def test_qr_code_encodes_a_standard_key_uri(on_setup, staff):
    response = on_setup.get(SETUP)
    uri = qr_text(response)
    label, query = uri_parts(uri)
    issuer = "ClinicAuth (Demo Clinic)"
    assert label == f"{issuer}:staff"
    assert query["issuer"] == issuer
    assert query["algorithm"] == "SHA1"
    assert query["digits"] == "6"
    assert query["period"] == "30"
    secret = query["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) * 8 == 160
    device = setup_device(on_setup)
    assert base64.b32decode(secret) == device.bin_key
    # An independent implementation reads the URI and produces the codes the server expects.
    parsed = pyotp.parse_uri(uri)
    assert parsed.issuer == issuer and parsed.name == "staff"
    assert parsed.now() == totp_for(device)


@pytest.mark.django_db
def test_issuer_survives_clinic_names_with_punctuation(client, clinic_factory, user_factory):
    odd = clinic_factory(name="St. Mary's: East & West #2")
    user = user_factory(clinic=odd, username="nurse.jo@east")
    client.force_login(user)
    uri = qr_text(client.get(SETUP))
    label, query = uri_parts(uri)
    issuer, _, account = label.rpartition(":")
    assert account == "nurse.jo@east"
    assert issuer == query["issuer"]
    assert issuer.startswith("ClinicAuth (St. Mary's") and "East & West #2" in issuer
    parsed = pyotp.parse_uri(uri)
    assert parsed.issuer == issuer and parsed.name == "nurse.jo@east"


@pytest.mark.django_db
def test_manual_key_is_the_qr_secret_grouped_for_reading(on_setup):
    response = on_setup.get(SETUP)
    shown = manual_key(response)
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{4}){7}", shown)
    _, query = uri_parts(qr_text(response))
    assert shown.replace(" ", "") == query["secret"]


@pytest.mark.django_db
def test_reloading_keeps_the_same_pending_secret(on_setup, staff, user_factory, client):
    first = on_setup.get(SETUP)
    second = on_setup.get(SETUP)
    assert manual_key(first) == manual_key(second)
    assert qr_text(first) == qr_text(second)
    device = setup_device(on_setup)
    assert manual_key(second).replace(" ", "") == base64.b32encode(device.bin_key).decode()
    # Someone else gets a different secret.
    other = user_factory()
    client.force_login(other)
    assert manual_key(client.get(SETUP)) != manual_key(first)


@pytest.mark.django_db
def test_setup_page_is_not_cached(on_setup):
    assert "no-store" in on_setup.get(SETUP)["Cache-Control"]
    assert "no-store" in on_setup.post(SETUP, {"code": "abc"})["Cache-Control"]


@pytest.mark.django_db
def test_setup_needs_a_login(client):
    response = client.get(SETUP)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_correct_code_confirms_shows_success_and_verifies_the_session(on_setup, staff):
    on_setup.get(SETUP)
    device = setup_device(on_setup)
    response = on_setup.post(SETUP, {"code": totp_for(device)}, follow=True)
    assert response.redirect_chain == [(reverse("two_factor_recovery_codes"), 302)]
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "2FA is now active" in html
    assert 'class="message message-success"' in html
    device.refresh_from_db()
    assert device.confirmed
    assert devices.confirmed_totp_device(staff) == device
    assert on_setup.session.get(DEVICE_ID_SESSION_KEY)
    # The session that enabled 2FA is not sent to the challenge.
    assert on_setup.get(reverse("home")).status_code == 200
    profile = on_setup.get(reverse("profile")).content.decode()
    assert '<strong class="status status-on">Enabled</strong>' in profile
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DEVICE_CONFIRMED, target=staff).count() == 1


@pytest.mark.django_db
def test_confirming_code_cannot_be_used_again_to_log_in(on_setup, staff, login):
    on_setup.get(SETUP)
    device = setup_device(on_setup)
    used = totp_for(device)
    assert on_setup.post(SETUP, {"code": used}).status_code == 302
    on_setup.post(reverse("logout"))
    login(staff, http_client=on_setup)
    # From now on the password alone is not enough.
    assert on_setup.get(reverse("home")).url.startswith(CHALLENGE)
    response = on_setup.post(CHALLENGE, {"code": used})
    assert response.status_code == 200
    assert "That code has already been used" in response.content.decode()
    assert on_setup.get(reverse("home")).url.startswith(CHALLENGE)
    assert on_setup.post(CHALLENGE, {"code": next_code(device)}).status_code == 302
    assert on_setup.get(reverse("home")).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("offset_steps", [-5, -2, 2, 5])
def test_expired_or_future_code_confirms_nothing(on_setup, staff, offset_steps):
    first = on_setup.get(SETUP)
    device = setup_device(on_setup)
    response = on_setup.post(SETUP, {"code": totp_for(device, offset_steps=offset_steps)})
    assert response.status_code == 200
    assert SETUP_ERROR in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert not devices.is_enrolled(staff)
    assert devices.recovery_codes_left(staff) == 0
    # The page is shown again with the same secret, so the user can simply retry.
    assert manual_key(response) == manual_key(first)
    assert on_setup.post(SETUP, {"code": totp_for(device)}).status_code == 302
    assert devices.is_enrolled(staff)


@pytest.mark.django_db
def test_wrong_code_confirms_nothing(on_setup, staff):
    on_setup.get(SETUP)
    device = setup_device(on_setup)
    valid = {totp_for(device, offset_steps=s) for s in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "999999", "123123") if c not in valid)
    response = on_setup.post(SETUP, {"code": wrong})
    assert response.status_code == 200
    assert SETUP_ERROR in response.content.decode()
    assert not devices.is_enrolled(staff)
    assert DEVICE_ID_SESSION_KEY not in on_setup.session


@pytest.mark.django_db
def test_setup_page_of_an_enrolled_user_goes_back_to_the_profile(client, staff, enrol):
    device, _ = enrol(staff)
    response = client.get(SETUP, follow=True)
    assert response.redirect_chain == [(reverse("profile"), 302)]
    assert "Two-factor authentication is already active on your account." in response.content.decode()
    # Posting a code again neither replaces the device nor issues new recovery codes.
    response = client.post(SETUP, {"code": next_code(device)})
    assert response.status_code == 302 and response.url == reverse("profile")
    assert devices.confirmed_totp_device(staff) == device
    assert devices.recovery_codes_left(staff) == 10


@pytest.mark.django_db
def test_continue_link_after_enabling_stays_on_the_site(on_setup, staff):
    on_setup.get(SETUP)
    device = setup_device(on_setup)
    response = on_setup.post(SETUP, {"code": totp_for(device), "next": "https://evil.com/"}, follow=True)
    assert '<a class="button primary" href="/home/">Continue</a>' in response.content.decode()


@pytest.mark.django_db
def test_wrong_code_then_immediate_right_code_is_throttled_at_setup(on_setup, staff, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    on_setup.get(SETUP)
    device = setup_device(on_setup)
    valid = {totp_for(device, offset_steps=s) for s in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "999999", "123123") if c not in valid)
    on_setup.post(SETUP, {"code": wrong})
    response = on_setup.post(SETUP, {"code": totp_for(device)})
    assert response.status_code == 200
    assert "Wait a second and try again." in response.content.decode()
    assert not devices.is_enrolled(staff)


@pytest.mark.django_db
def test_setup_code_box_does_not_take_focus_so_the_page_opens_at_its_heading(client, staff):
    client.force_login(staff)
    html = client.get(SETUP).content.decode()
    code_input = re.search(r'<input[^>]*id="id_code"[^>]*>', html).group(0)
    assert "autofocus" not in code_input
    # The challenge is the one page whose code box is the whole page: there it keeps the cursor.
    challenge_input = str(ChallengeForm()["code"])
    assert "autofocus" in challenge_input


# --- set-up on the phone that will hold the app ------------------


def qr_image(response) -> Image.Image:
    src = re.search(r'<img class="qr-code" src="data:image/png;base64,([^"]+)"', response.content.decode()).group(1)
    return Image.open(io.BytesIO(base64.b64decode(src))).convert("L")


@pytest.mark.django_db
def test_qr_code_has_whole_pixels_per_module_and_is_shown_at_its_own_size(on_setup):
    response = on_setup.get(SETUP)
    image = qr_image(response)
    size = image.width
    assert image.height == size
    assert re.search(rf'<img class="qr-code"[^>]* width="{size}" height="{size}">', response.content.decode())
    # The top-left finder pattern is 7 modules of dark, after the quiet zone of 4.
    y = next(y for y in range(size) if any(image.getpixel((x, y)) < 128 for x in range(size)))
    row = [image.getpixel((x, y)) < 128 for x in range(size)]
    start = row.index(True)
    run = row[start:].index(False)
    scale, remainder = divmod(run, 7)
    assert remainder == 0 and scale >= 2, (run, size)
    assert start == 4 * scale  # quiet zone
    assert size % scale == 0 and (size // scale - 8 - 17) % 4 == 0  # 21, 25, ... modules plus the zone
    assert 200 <= size <= 264


@pytest.mark.django_db
def test_setup_offers_the_key_uri_as_a_link_and_a_copy_key_button(on_setup):
    response = on_setup.get(SETUP)
    html = response.content.decode()
    link = re.search(r'<a class="button" href="(otpauth://[^"]+)">Open in your authenticator app</a>', html)
    assert link and link.group(1).replace("&amp;", "&") == qr_text(response)
    copy = re.search(r'<button type="button" class="button small" data-copy-text="([A-Z2-7]+)"[^>]*>Copy key</button>', html)
    assert copy and copy.group(1) == manual_key(response).replace(" ", "")


@pytest.mark.django_db
def test_voluntary_setup_can_be_cancelled_but_required_setup_cannot(on_setup, clinic):
    cancel = f'<a class="button" href="{reverse("profile")}">Cancel</a>'
    assert cancel in on_setup.get(SETUP).content.decode()
    services.clinic_set_mandatory(clinic=clinic, mandatory=True, actor=None)
    assert cancel not in on_setup.get(SETUP).content.decode()
