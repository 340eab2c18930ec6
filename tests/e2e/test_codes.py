"""Wrong codes and recovery codes, in the browser: errors are shown and announced, nothing moves on."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .pages import (
    check_page,
    continue_after_codes,
    enable_2fa_from_profile,
    enter_setup_code,
    expect_2fa_active,
    heading,
    log_in,
    log_out,
    scan_setup_page,
    totp,
)

pytestmark = pytest.mark.e2e


def wrong_code_for(secret: str) -> str:
    """A well-formed code that no nearby time step of this secret produces."""
    valid = {totp(secret, offset_steps=n) for n in range(-2, 4)}
    return next(c for c in (f"{n:06d}" for n in range(123456, 999999, 111111)) if c not in valid)


def expect_code_error(page, text: str) -> None:
    """The error is visible, announced (role=alert) and tied to the field (aria-describedby)."""
    code_input = page.get_by_label(re.compile("^(Verification|Recovery) Code$"))
    expect(page.get_by_role("alert").filter(has_text=text)).to_be_visible()
    expect(code_input).to_have_attribute("aria-invalid", "true")
    expect(code_input).to_have_accessible_description(re.compile(re.escape(text)))


def test_wrong_code_shows_an_error_and_stays(new_page):
    page = new_page()
    log_in(page, "codes-staff")
    page.get_by_role("link", name="My Profile").click()
    page.get_by_role("region", name="Two-Factor Authentication").get_by_role(
        "link", name="Enable Two-Factor Authentication"
    ).click()
    secret = scan_setup_page(page, username="codes-staff")
    code_input = page.get_by_label("Verification Code")
    expect(code_input).to_have_attribute("autocomplete", "one-time-code")
    expect(code_input).to_have_attribute("inputmode", "numeric")

    # On the set-up page: a wrong code is refused, the same key stays on the page.
    enter_setup_code(page, wrong_code_for(secret))
    expect(heading(page, "Set up Two-Factor Authentication")).to_be_visible()
    expect_code_error(page, "That code did not match")
    check_page(page, "setup with wrong code")
    assert scan_setup_page(page, username="codes-staff") == secret
    enter_setup_code(page, totp(secret))
    expect_2fa_active(page)
    continue_after_codes(page)
    log_out(page)

    # On the challenge: a wrong code is refused and the user is still not in.
    log_in(page, "codes-staff")
    expect(heading(page, "Two-Factor Authentication")).to_be_visible()
    page.get_by_label("Verification Code").fill(wrong_code_for(secret))
    page.get_by_role("button", name="Verify").click()
    expect(heading(page, "Two-Factor Authentication")).to_be_visible()
    expect_code_error(page, "That code is not valid")
    check_page(page, "challenge with wrong code")
    page.goto("/home/")
    expect(heading(page, "Two-Factor Authentication")).to_be_visible()

    # The right code still works afterwards.
    page.get_by_label("Verification Code").fill(totp(secret, offset_steps=1))
    page.get_by_role("button", name="Verify").click()
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()


def test_recovery_code_works_once(new_page):
    page = new_page()
    log_in(page, "codes-admin")
    _secret, codes = enable_2fa_from_profile(page, username="codes-admin")
    log_out(page)

    def use_recovery_code(code: str) -> None:
        log_in(page, "codes-admin")
        expect(heading(page, "Two-Factor Authentication")).to_be_visible()
        page.get_by_role("link", name="Lost your phone? Use a recovery code").click()
        page.get_by_label("Recovery Code").fill(code)
        page.get_by_role("button", name="Verify").click()

    use_recovery_code(codes[0])
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="You used a recovery code. 9 recovery codes left.")).to_be_visible()
    check_page(page, "home after recovery code")
    log_out(page)

    use_recovery_code(codes[0])
    expect(heading(page, "Two-Factor Authentication")).to_be_visible()
    expect_code_error(page, "That recovery code didn't work")  # not "check your authenticator app"
    check_page(page, "challenge with used recovery code")

    # Lower case and without the dash, as people type it, another unused code works.
    page.get_by_label("Recovery Code").fill(codes[1].replace("-", "").lower())
    page.get_by_role("button", name="Verify").click()
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    page.get_by_role("link", name="My Profile").click()
    expect(page.get_by_text("8 of 10 recovery codes left.")).to_be_visible()
