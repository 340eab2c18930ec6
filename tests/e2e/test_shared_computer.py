"""Shared computers in Chromium: switching user on a shared computer, "Confirm it's you", the idle warning."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD
from .pages import check_page, enable_2fa_from_profile, heading, log_in, recovery_codes, totp
from .test_keyboard import tab_to, type_into

pytestmark = pytest.mark.e2e


def welcome(page):
    return heading(page, re.compile("^Welcome"))


def test_switching_user_on_a_shared_computer_by_keyboard(new_page):
    desk = new_page()
    log_in(desk, "shared-staff")
    expect(welcome(desk)).to_be_visible()

    # The next person opens the login page: it says who is signed in, and offers both ways.
    desk.goto("/accounts/login/")
    expect(desk.get_by_text("You are signed in as Robin Shared.")).to_be_visible()
    expect(desk.get_by_role("button", name="Continue as Robin Shared")).to_be_visible()
    switch = desk.get_by_role("button", name="Sign in as someone else")
    check_page(desk, "signed in as")
    tab_to(desk, switch)
    desk.keyboard.press("Enter")
    expect(heading(desk, "Log in")).to_be_visible()
    expect(desk.get_by_role("status").filter(has_text="Robin Shared has been signed out of this browser.")).to_be_visible()
    expect(desk.get_by_label("Username")).to_have_value("")

    type_into(desk, desk.get_by_label("Username"), "shared-admin")
    type_into(desk, desk.get_by_label("Password"), "clinicauth-demo")
    desk.keyboard.press("Enter")
    expect(welcome(desk)).to_be_visible()
    expect(desk.get_by_text("Alex Shared", exact=False).first).to_be_visible()


def test_confirm_its_you_before_new_recovery_codes_then_the_action_runs(new_page, short_reauth_server):
    staff = new_page(base_url=short_reauth_server)
    log_in(staff, "confirm-staff")
    expect(welcome(staff)).to_be_visible()
    secret, old_codes = enable_2fa_from_profile(staff, username="confirm-staff")
    staff.get_by_role("link", name="My Profile").click()
    time.sleep(11)  # past the 10-second window this server allows

    staff.get_by_role("button", name="Generate new recovery codes").click()
    expect(heading(staff, "Confirm it's you")).to_be_visible()
    expect(staff.get_by_text("generate new recovery codes")).to_be_visible()
    check_page(staff, "confirm its you")
    code_field = staff.get_by_label("Verification Code")
    tab_to(staff, code_field)
    staff.keyboard.type(totp(secret, offset_steps=1))
    staff.keyboard.press("Enter")

    new_codes = recovery_codes(staff)  # the action ran as submitted: no second click
    assert not set(new_codes) & set(old_codes)


def test_the_idle_warning_keeps_the_session_or_signs_out(new_page, short_idle_server):
    staff = new_page(base_url=short_idle_server)
    log_in(staff, "idle-staff")
    expect(welcome(staff)).to_be_visible()

    dialog = staff.get_by_role("alertdialog", name="Are you still there?")
    expect(dialog).to_be_visible(timeout=20_000)
    expect(dialog).to_contain_text("You'll be signed out in")
    stay = dialog.get_by_role("button", name="Stay signed in")
    expect(stay).to_be_focused()
    check_page(staff, "idle warning")
    staff.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(welcome(staff)).to_be_visible()

    # Left alone again, on My Profile, the warning comes back and the countdown ends in the login
    # page, which says why; signing in again leads back to My Profile.
    staff.get_by_role("link", name="My Profile").click()
    expect(heading(staff, "My Profile")).to_be_visible()
    expect(dialog).to_be_visible(timeout=20_000)
    expect(heading(staff, "Log in")).to_be_visible(timeout=20_000)
    expect(staff.get_by_role("status").filter(has_text="You were signed out after")).to_contain_text("without activity")
    check_page(staff, "login after idle logout")
    staff.set_viewport_size({"width": 375, "height": 812})
    check_page(staff, "login after idle logout")
    staff.get_by_label("Username").fill("idle-staff")
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    expect(heading(staff, "My Profile")).to_be_visible()


def test_the_warning_names_the_sign_ins_own_limit_when_that_comes_first(new_page, short_absolute_server):
    staff = new_page(base_url=short_absolute_server)
    log_in(staff, "limit-staff")
    expect(welcome(staff)).to_be_visible()

    dialog = staff.get_by_role("alertdialog", name="Your sign-in is about to end")
    expect(dialog).to_be_visible(timeout=20_000)
    expect(dialog).to_contain_text("Every sign-in ends after")
    expect(dialog.get_by_role("button", name="Stay signed in")).to_be_hidden()  # staying active cannot help
    ok = dialog.get_by_role("button", name="OK")
    expect(ok).to_be_focused()
    check_page(staff, "absolute limit warning")
    staff.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    # The countdown still ends the session at the limit.
    expect(heading(staff, "Log in")).to_be_visible(timeout=20_000)

