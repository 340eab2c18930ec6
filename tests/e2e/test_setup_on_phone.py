"""Setting up 2FA on the phone that will hold the authenticator app, and
a QR code whose squares are all the same whole number of pixels."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from playwright.sync_api import expect

from .pages import (
    SAVED_CODES_QUESTION,
    check_otpauth_uri,
    check_page,
    continue_after_codes,
    enter_setup_code,
    expect_2fa_active,
    heading,
    log_in,
    manual_key,
    scan_setup_page,
    totp,
)

pytestmark = pytest.mark.e2e

QR_PIXELS = """img => ({natural: img.naturalWidth, shown: img.getBoundingClientRect().width,
                       ratio: window.devicePixelRatio})"""


def open_voluntary_setup(page, username):
    log_in(page, username)
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    page.get_by_role("link", name="My Profile").click()
    page.get_by_role("link", name="Enable Two-Factor Authentication").click()
    expect(heading(page, "Set up Two-Factor Authentication")).to_be_visible()


def expect_crisp_qr(page):
    qr = page.get_by_role("img", name=re.compile("QR code"))
    qr.evaluate("img => img.decode()")
    pixels = qr.evaluate(QR_PIXELS)
    # Shown at its own size, so every module keeps its whole number of pixels.
    assert pixels["shown"] == pixels["natural"], pixels


@pytest.mark.parametrize("width", [375, 1280], ids=["375px", "1280px"])
def test_setup_on_a_phone_and_on_a_computer(new_page, app_server, width):
    page = new_page(width=width, height=812)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server)
    username = "phone-staff" if width == 375 else "phone-admin"
    open_voluntary_setup(page, username)
    secret = scan_setup_page(page, username=username)
    expect_crisp_qr(page)

    open_in_app = page.get_by_role("link", name="Open in your authenticator app")
    if width < 640:
        # On the phone itself the QR code cannot be scanned: the link hands the key to the app.
        expect(open_in_app).to_be_visible()
        assert check_otpauth_uri(open_in_app.get_attribute("href"), username=username) == secret
    else:
        expect(open_in_app).to_be_hidden()

    copy = page.get_by_role("button", name="Copy key")
    expect(copy).to_be_visible()
    if width >= 640:  # beside the key (on a phone it may wrap under it)
        box, key_box = copy.bounding_box(), page.get_by_role("code").bounding_box()
        assert abs((box["y"] + box["height"] / 2) - (key_box["y"] + key_box["height"] / 2)) < box["height"]
    copy.click()
    expect(page.get_by_role("status").filter(has_text="Key copied")).to_be_visible()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == secret == manual_key(page), "Copy key must copy the key without its spaces"
    check_page(page, "setup, voluntary")

    # A voluntary set-up can be left: Cancel goes back to My Profile and nothing is enabled.
    page.get_by_role("link", name="Cancel").click()
    expect(heading(page, "My Profile")).to_be_visible()
    expect(page.get_by_text("Not set up")).to_be_visible()
    page.get_by_role("link", name="Enable Two-Factor Authentication").click()
    secret = scan_setup_page(page, username=username)
    enter_setup_code(page, totp(secret))
    codes = expect_2fa_active(page)
    check_recovery_codes_page(page, username=username, codes=codes)


def check_recovery_codes_page(page, *, username: str, codes: list[str]) -> None:
    """The codes say whose they are, on paper and in the file; Continue asks first."""
    owner = page.get_by_text(re.compile(rf"^ClinicAuth · Pocket Phone Clinic · {username} · created \d"))
    expect(owner).to_be_visible()
    page.emulate_media(media="print")
    expect(owner).to_be_visible()  # on the printout too, with the codes
    expect(page.get_by_role("code").first).to_be_visible()
    expect(page.get_by_role("link", name="Continue")).to_be_hidden()
    page.emulate_media(media="screen")
    href = page.get_by_role("link", name="Download codes").get_attribute("href")
    text = unquote(href.split(",", 1)[1])
    assert text.startswith(f"ClinicAuth recovery codes\nClinic: Pocket Phone Clinic\nUsername: {username}\nCreated: ")
    assert text.rstrip("\n").split("\n")[-len(codes):] == codes
    # Continue asks "Have you saved your codes?"; "no" stays on the page, since the codes are shown once.
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("link", name="Continue").click()
    expect(heading(page, "Your recovery codes")).to_be_visible()
    assert asked == [SAVED_CODES_QUESTION]
    continue_after_codes(page)
    expect(heading(page, "My Profile")).to_be_visible()
    # Generating new codes warns, before the button, that these stop working.
    button = page.get_by_role("button", name="Generate new recovery codes")
    expect(button).to_have_accessible_description(re.compile("stop working"))
    check_page(page, "profile with 2FA enabled")


def test_required_setup_has_no_cancel(new_page):
    page = new_page(width=375, height=812)
    log_in(page, "forced-admin")
    expect(heading(page, "Set up Two-Factor Authentication")).to_be_visible()
    expect(page.get_by_role("button", name="Enable 2FA")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel")).to_have_count(0)
    expect_crisp_qr(page)
    check_page(page, "setup, required")
