"""Passkeys and security keys in Chromium, with the DevTools protocol's virtual authenticator.

The authenticator is a CTAP2 platform authenticator ("internal" transport) with user
verification, so Chromium runs the real WebAuthn ceremony against the served app.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from .pages import check_page, continue_after_codes, enable_2fa_from_profile, heading, log_in, log_out
from .test_keyboard import tab_to

pytestmark = pytest.mark.e2e


def add_virtual_authenticator(page) -> tuple[object, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def credentials(cdp, authenticator_id: str) -> list:
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


def press_passkey_button(page, name: str, *, key: str | None = None, done=None) -> None:
    """Click (or press `key` on) a django-otp-webauthn button, again if the first press came too early.

    Its script shows the button and then attaches the handler; a press in between does nothing.
    Once the handler runs it relabels the button at once ("Registering...", "Verifying...").
    """
    for _ in range(3):
        button = page.get_by_role("button", name=name)
        if key:
            button.focus()
            page.keyboard.press(key)
        else:
            button.click()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            # Started (relabelled), or already finished and back on a page with `done` on it.
            if page.get_by_role("button", name=name).count() == 0 or (done is not None and done.count() > 0):
                return
            page.wait_for_timeout(100)
    raise AssertionError(f"the {name!r} button never started its ceremony")


def welcome(page):
    return heading(page, re.compile("^Welcome"))


def test_add_a_passkey_from_my_profile_then_sign_in_with_it_by_keyboard(new_page):
    staff = new_page()
    cdp, authenticator = add_virtual_authenticator(staff)
    log_in(staff, "keys-staff")
    expect(welcome(staff)).to_be_visible()
    enable_2fa_from_profile(staff, username="keys-staff")

    staff.get_by_role("link", name="My Profile").click()
    section = staff.get_by_role("region", name="Two-Factor Authentication")
    added = staff.get_by_role("status").filter(has_text=re.compile("Passkey or security key .* added"))
    press_passkey_button(staff, "Add a passkey or security key", done=added)
    expect(added).to_be_visible(timeout=30_000)
    expect(heading(staff, "My Profile")).to_be_visible()
    assert len(credentials(cdp, authenticator)) == 1
    expect(section.get_by_role("listitem").filter(has_text="Authenticator app")).to_be_visible()
    expect(section.get_by_role("button", name=re.compile("^Remove "))).to_have_count(1)
    check_page(staff, "profile with a passkey")

    log_out(staff)
    log_in(staff, "keys-staff")
    expect(heading(staff, "Two-Factor Authentication")).to_be_visible()
    use_key = staff.get_by_role("button", name="Use your passkey or security key")
    expect(use_key).to_be_visible()
    check_page(staff, "challenge with a passkey")
    # Keyboard only: Tab to the button, Enter, and the browser's prompt answers for the key.
    tab_to(staff, use_key)
    press_passkey_button(staff, "Use your passkey or security key", key="Enter")
    expect(welcome(staff)).to_be_visible(timeout=30_000)
    assert credentials(cdp, authenticator)[0]["signCount"] >= 1


def test_forced_set_up_with_a_passkey_then_an_admins_disable_stops_the_key(new_page):
    staff = new_page(width=375, height=812)
    cdp, authenticator = add_virtual_authenticator(staff)
    log_in(staff, "keysreq-staff")
    expect(heading(staff, "Set up Two-Factor Authentication")).to_be_visible()
    check_page(staff, "setup with the passkey option")
    press_passkey_button(staff, "Use a passkey or security key instead")
    expect(heading(staff, "Your recovery codes")).to_be_visible(timeout=30_000)  # the key's ceremony, then a redirect
    expect(staff.get_by_role("status").filter(has_text="2FA is now active")).to_be_visible()
    continue_after_codes(staff)
    expect(welcome(staff)).to_be_visible()

    # The clinic's admin sets up with a key of their own, then disables the member's 2FA.
    admin = new_page()
    add_virtual_authenticator(admin)
    log_in(admin, "keysreq-admin")
    press_passkey_button(admin, "Use a passkey or security key instead")
    expect(heading(admin, "Your recovery codes")).to_be_visible(timeout=30_000)
    continue_after_codes(admin)
    expect(welcome(admin)).to_be_visible()
    admin.goto("/users/")
    row = admin.get_by_role("row").filter(has_text="keysreq-staff")
    expect(row.get_by_text("1 key")).to_be_visible()
    row.get_by_role("button", name="View").click()
    admin.get_by_role("button", name="Disable Two-Factor Authentication").click()
    admin.get_by_role("button", name="Disable Two-Factor Authentication").click()
    expect(admin.get_by_role("status").filter(has_text="is now disabled")).to_be_visible()

    # The member was signed out; the key still sits in the browser but opens nothing.
    staff.goto("/home/")
    expect(heading(staff, "Log in")).to_be_visible()
    log_in(staff, "keysreq-staff")
    expect(heading(staff, "Set up Two-Factor Authentication")).to_be_visible()
    expect(staff.get_by_role("button", name="Use your passkey or security key")).to_have_count(0)
    assert len(credentials(cdp, authenticator)) == 1
    response = staff.request.post("/accounts/passkeys/authentication/begin/", headers={"Accept": "application/json"})
    assert response.status == 403 and response.json()["error"] == "two_factor_setup_required"
