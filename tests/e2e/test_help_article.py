"""The help article "Two-Factor Authorization (2FA)", one test per section, click by click."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from .pages import (
    OATHTOOL,
    check_otpauth_uri,
    check_page,
    continue_after_codes,
    decode_qr,
    enable_2fa_from_profile,
    enter_setup_code,
    expect_2fa_active,
    heading,
    log_in,
    log_out,
    manual_key,
    oathtool_code,
    pass_challenge,
    scan_setup_page,
    totp,
)

pytestmark = pytest.mark.e2e


def open_edit_clinic(page):
    """Steps 1-2 of every Clinic Settings section: Navigate to Clinic Settings, select Edit Clinic."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Clinic Settings").click()
    expect(heading(page, "Clinic Settings")).to_be_visible()
    page.get_by_role("button", name="Edit Clinic").click()
    expect(heading(page, "Edit Clinic")).to_be_visible()


def test_enabling_mandatory_2fa(new_page):
    # Enabling Mandatory 2FA, steps 1-4, as the demo clinic's admin.
    admin = new_page()
    log_in(admin, "demo-admin", check="login")
    expect(heading(admin, re.compile("^Welcome"))).to_be_visible()
    check_page(admin, "home")
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Clinic Settings").click()
    expect(heading(admin, "Clinic Settings")).to_be_visible()
    check_page(admin, "clinic settings")
    admin.get_by_role("button", name="Edit Clinic").click()
    expect(heading(admin, "Edit Clinic")).to_be_visible()
    check_page(admin, "edit clinic")
    mandatory = admin.get_by_label("Mandatory 2FA")
    expect(mandatory).not_to_be_checked()
    mandatory.check()
    admin.get_by_role("button", name="Save").click()
    # The admin has no authenticator yet, so they are the first to be sent to set one up.
    expect(admin.get_by_role("status").filter(has_text="Clinic settings saved.")).to_be_visible()
    expect(heading(admin, "Set up Two-Factor Authentication")).to_be_visible()

    # Steps for Staff to Enable 2FA, 5-9.
    staff = new_page()
    log_in(staff, "demo-staff")
    # 5. This loads the Set up Two-Factor Authentication page on login.
    expect(heading(staff, "Set up Two-Factor Authentication")).to_be_visible()
    expect(staff.get_by_text("Your clinic requires two-factor authentication")).to_be_visible()
    # 6. The recommended apps are named.
    for app in ("Google Authenticator", "Microsoft Authenticator", "Twilio Authy"):
        expect(staff.get_by_role("listitem").filter(has_text=re.compile(f"^{app}$"))).to_be_visible()
    check_page(staff, "setup mandatory")
    # 7. Scan the QR code: from the screenshot's pixels, as a phone camera would.
    qr = staff.get_by_role("img", name=re.compile("QR code"))
    qr.evaluate("img => img.decode()")
    uri = decode_qr(staff.screenshot(full_page=True))
    secret = check_otpauth_uri(uri, username="demo-staff")
    # ... or enter the code seen manually: the same key, so the same codes.
    typed = manual_key(staff)
    assert typed == secret
    now = time.time()
    code = totp(secret, at=now)
    assert totp(typed, at=now) == code
    if OATHTOOL:
        assert oathtool_code(secret, now) == code, "oathtool disagrees with pyotp"
        assert oathtool_code(typed, now) == code
    # 8-9. Enter the code in Verification Code, select Enable 2FA: 2FA is now active.
    enter_setup_code(staff, totp(secret))
    codes = expect_2fa_active(staff)
    check_page(staff, "recovery codes")
    assert all(re.fullmatch(r"[A-Z0-9]{4,5}-[A-Z0-9]{4,5}", c) for c in codes), codes
    continue_after_codes(staff)
    expect(heading(staff, re.compile("^Welcome"))).to_be_visible()
    expect(staff.get_by_text("Your account is protected with two-factor authentication.")).to_be_visible()


def test_enabling_2fa_individually(new_page):
    # Northside Clinic does not make 2FA mandatory: the staff member turns it on themselves.
    page = new_page()
    log_in(page, "north-staff")
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    # 1-8: My Profile → Two-Factor Authentication → Enable Two-Factor Authentication → set up → Enable 2FA.
    secret, _codes = enable_2fa_from_profile(page, username="north-staff", check=True)
    page.get_by_role("link", name="My Profile").click()
    status = page.get_by_role("region", name="Two-Factor Authentication")
    expect(status.get_by_text("Enabled", exact=True)).to_be_visible()
    # Next time: password, then a fresh code on the "Two-Factor Authentication" page.
    log_out(page)
    log_in(page, "north-staff")
    pass_challenge(page, secret, check="challenge")


def test_disabling_mandatory_2fa(new_page):
    # Riverside Clinic starts with Mandatory 2FA on; its admin must set up 2FA to reach settings.
    admin = new_page()
    log_in(admin, "river-admin")
    secret = scan_setup_page(admin, username="river-admin")
    enter_setup_code(admin, totp(secret))
    expect_2fa_active(admin)
    continue_after_codes(admin)

    # 1-3: Navigate to Clinic Settings, Edit Clinic, deselect Mandatory 2FA.
    open_edit_clinic(admin)
    mandatory = admin.get_by_label("Mandatory 2FA")
    expect(mandatory).to_be_checked()
    unticking = admin.get_by_text("When you save, members are no longer required to use two-factor authentication.")
    expect(unticking).to_be_hidden()
    mandatory.uncheck()
    expect(unticking).to_be_visible()  # it says what Save will do
    check_page(admin, "edit clinic unticking mandatory")
    admin.set_viewport_size({"width": 375, "height": 812})
    check_page(admin, "edit clinic unticking mandatory")
    admin.set_viewport_size({"width": 1280, "height": 900})
    admin.get_by_role("button", name="Save").click()
    expect(admin.get_by_role("status").filter(has_text="Clinic settings saved.")).to_be_visible()
    expect(heading(admin, "Clinic Settings")).to_be_visible()
    expect(admin.get_by_text(re.compile("^Off"))).to_be_visible()

    # Staff without 2FA now go straight in.
    staff = new_page()
    log_in(staff, "river-staff")
    expect(heading(staff, re.compile("^Welcome"))).to_be_visible()
    expect(staff.get_by_text("Two-factor authentication is not set up on your account.")).to_be_visible()


def test_disabling_2fa_for_one_user(new_page):
    # Harbour Clinic's staff member has 2FA on (and has lost their phone).
    staff = new_page()
    log_in(staff, "harbour-staff")
    enable_2fa_from_profile(staff, username="harbour-staff")
    log_out(staff)

    admin = new_page()
    log_in(admin, "harbour-admin")
    # 1-2. Navigate to Clinic Settings, select Edit Clinic.
    open_edit_clinic(admin)
    # 3. Select the Users drop-down and select Users.
    nav = admin.get_by_role("navigation", name="Main")
    menu_button = nav.get_by_role("button", name="Users", exact=True)
    expect(menu_button).to_have_attribute("aria-expanded", "false")
    menu_button.click()
    expect(menu_button).to_have_attribute("aria-expanded", "true")
    nav.get_by_role("link", name="Users", exact=True).click()
    expect(heading(admin, "Users")).to_be_visible()
    check_page(admin, "users list")
    # 4. Search for the user and select the View button to the right.
    admin.get_by_role("searchbox", name="Search users").fill("harbour-st")
    admin.get_by_role("button", name="Search").click()
    rows = admin.get_by_role("row").filter(has=admin.get_by_role("cell", name="harbour-staff", exact=True))
    expect(rows).to_have_count(1)
    expect(admin.get_by_role("cell", name="harbour-admin", exact=True)).to_have_count(0)
    expect(rows.get_by_text("Enabled")).to_be_visible()
    rows.get_by_role("button", name="View").click()
    expect(heading(admin, "Robin Harbour")).to_be_visible()
    check_page(admin, "user view")
    # 5. Select Disable Two-Factor Authentication in the Disable 2FA section, and confirm.
    admin.get_by_role("region", name="Disable 2FA").get_by_role(
        "button", name="Disable Two-Factor Authentication"
    ).click()
    expect(heading(admin, "Disable 2FA for Robin Harbour?")).to_be_visible()
    check_page(admin, "confirm disable")
    admin.get_by_role("button", name="Disable Two-Factor Authentication").click()
    expect(
        admin.get_by_role("status").filter(has_text="Two-factor authentication is now disabled for Robin Harbour")
    ).to_be_visible()
    check_page(admin, "user view after disable")

    # The audit log shows who did it to whom.
    nav.get_by_role("button", name="Users", exact=True).click()
    nav.get_by_role("link", name="Audit Log").click()
    expect(heading(admin, "Audit Log")).to_be_visible()
    check_page(admin, "audit log")
    latest = admin.get_by_role("row").nth(1)
    expect(latest.get_by_role("cell", name="harbour-admin", exact=True)).to_be_visible()
    expect(latest.get_by_role("cell", name="harbour-staff", exact=True)).to_be_visible()

    # That user's next login has no code step.
    log_in(staff, "harbour-staff")
    expect(heading(staff, re.compile("^Welcome"))).to_be_visible()
    expect(staff.get_by_text("Two-factor authentication is not set up on your account.")).to_be_visible()
