"""Membership in the browser: an invitation into forced 2FA set-up, a forgotten password that still
asks for the code, a leaver switched off at once, and the same with the keyboard alone."""

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
    pass_challenge,
    scan_setup_page,
    totp,
)
from .test_keyboard import keyboard_log_in, tab_to, type_into

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "plum orchard lantern 42"


def open_users(page):
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Users", exact=True).click()
    nav.get_by_role("link", name="Users", exact=True).click()
    expect(heading(page, "Users")).to_be_visible()


def view_member(page, username: str, name: str):
    open_users(page)
    page.get_by_role("row").filter(has=page.get_by_role("cell", name=username, exact=True)).get_by_role(
        "button", name="View"
    ).click()
    expect(heading(page, name)).to_be_visible()


def test_invitation_leads_into_forced_2fa_setup(new_page, mailbox):
    # Invitation Clinic has Mandatory 2FA on, so its admin sets up 2FA first.
    admin = new_page()
    log_in(admin, "invite-admin")
    secret = scan_setup_page(admin, username="invite-admin")
    enter_setup_code(admin, totp(secret))
    expect_2fa_active(admin)
    continue_after_codes(admin)

    open_users(admin)
    admin.get_by_role("link", name="Add user").click()
    expect(heading(admin, "Add user")).to_be_visible()
    check_page(admin, "add user")
    admin.get_by_label("First name").fill("Jo")
    admin.get_by_label("Last name").fill("Newcomer")
    admin.get_by_label("Email").fill("not an email")
    admin.get_by_role("button", name="Send invitation").click()
    expect(admin.get_by_role("alert").filter(has_text="Enter a valid email address.")).to_be_visible()
    check_page(admin, "add user with errors")
    admin.get_by_label("Email").fill("jo.newcomer@example.com")
    admin.get_by_label("Role").select_option(label="Staff")
    admin.get_by_role("button", name="Send invitation").click()
    expect(heading(admin, "Jo Newcomer")).to_be_visible()
    expect(admin.get_by_role("status").filter(has_text="Invitation sent to jo.newcomer@example.com")).to_be_visible()
    invitation = admin.get_by_role("region", name="Invitation")
    expect(invitation.get_by_text(re.compile("^Invitation sent "))).to_be_visible()
    expect(invitation.get_by_role("button", name="Resend")).to_be_visible()
    expect(invitation.get_by_role("button", name="Revoke")).to_be_visible()
    # Only what applies to someone who has not signed in yet: no empty sign-in and 2FA cards.
    expect(admin.get_by_role("region", name=re.compile("^Where .* is signed in$"))).to_have_count(0)
    expect(admin.get_by_role("region", name="Disable 2FA")).to_have_count(0)
    check_page(admin, "member invited")
    admin.set_viewport_size({"width": 375, "height": 812})
    check_page(admin, "member invited")
    admin.set_viewport_size({"width": 1280, "height": 900})

    # The invitee opens the link from the e-mail, in their own browser.
    path = mailbox.link_to("jo.newcomer@example.com", "/accounts/invitation/")
    invitee = new_page()
    invitee.goto(path)
    expect(heading(invitee, "Set your password")).to_be_visible()
    # The password rules are on screen before anything is typed.
    expect(invitee.get_by_text("Your password must contain at least 10 characters.")).to_be_visible()
    check_page(invitee, "set your password")
    invitee.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    invitee.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    invitee.get_by_role("button", name="Set password").click()
    # Mandatory 2FA: straight to set-up, as at any login.
    secret = scan_setup_page(invitee, username="jo.newcomer@example.com")
    enter_setup_code(invitee, totp(secret))
    expect_2fa_active(invitee)
    continue_after_codes(invitee)
    expect(heading(invitee, re.compile("^Welcome"))).to_be_visible()

    # The link worked once.
    again = new_page()
    again.goto(path)
    expect(heading(again, "This invitation link no longer works")).to_be_visible()
    expect(again.get_by_text("Please ask your clinic administrator for a new invitation.")).to_be_visible()
    check_page(again, "invitation used")

    # The admin sees the member as active, with 2FA.
    view_member(admin, "jo.newcomer@example.com", "Jo Newcomer")
    expect(admin.get_by_role("region", name="Invitation")).to_have_count(0)


def test_forgotten_password_still_asks_for_the_code(new_page, mailbox):
    staff = new_page()
    log_in(staff, "forgot-staff")
    secret, _ = enable_2fa_from_profile(staff, username="forgot-staff")
    log_out(staff)

    staff.get_by_role("link", name="Forgot your password?").click()
    expect(heading(staff, "Forgot your password?")).to_be_visible()
    check_page(staff, "forgot password")
    staff.get_by_label("Username or email").fill("forgot-staff@example.com")
    staff.get_by_role("button", name="Send reset link").click()
    expect(heading(staff, "Check your email")).to_be_visible()
    expect(staff.get_by_text("If an account matches, we've sent a link")).to_be_visible()
    check_page(staff, "reset link sent")

    path = mailbox.link_to("forgot-staff@example.com", "/accounts/password-reset/")
    staff.goto(path)
    expect(heading(staff, "Set a new password")).to_be_visible()
    expect(staff.get_by_text("Your password must contain at least 10 characters.")).to_be_visible()
    check_page(staff, "set a new password")
    expect(staff.get_by_text("Choose a password that follows these rules:")).to_be_visible()
    expect(staff.get_by_text("Your password:", exact=True)).to_have_count(0)
    expect(staff.get_by_text("and your verification code")).to_be_visible()  # forgot-staff has 2FA
    # A password the rules refuse is said under the field it was typed in.
    staff.get_by_label("New password", exact=True).fill("short")
    staff.get_by_label("Confirm new password").fill("short")
    staff.get_by_role("button", name="Set new password").click()
    new_field = staff.locator(".field").filter(has=staff.get_by_label("New password", exact=True))
    expect(new_field.get_by_role("alert")).to_contain_text("too short")
    confirm_field = staff.locator(".field").filter(has=staff.get_by_label("Confirm new password"))
    expect(confirm_field.get_by_role("alert")).to_have_count(0)
    check_page(staff, "new password too short")
    staff.set_viewport_size({"width": 375, "height": 812})
    check_page(staff, "new password too short")
    staff.set_viewport_size({"width": 1280, "height": 900})
    staff.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    staff.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    staff.get_by_role("button", name="Set new password").click()
    # Not signed in: the login page, then password and code as at any login.
    expect(heading(staff, "Log in")).to_be_visible()
    expect(staff.get_by_role("status").filter(has_text="Your password has been changed.")).to_be_visible()
    assert mailbox.count_to("forgot-staff@example.com") >= 3  # enabled, reset link, password changed
    staff.goto("/home/")
    expect(heading(staff, "Log in")).to_be_visible()
    log_in(staff, "forgot-staff", NEW_PASSWORD)
    pass_challenge(staff, secret)

    # The link is spent.
    other = new_page()
    other.goto(path)
    expect(heading(other, "This reset link no longer works")).to_be_visible()
    check_page(other, "reset link used")


def test_change_role_both_ways_and_the_audit_log(new_page):
    admin = new_page()
    log_in(admin, "forgot-admin")
    expect(heading(admin, re.compile("^Welcome"))).to_be_visible()
    view_member(admin, "forgot-staff", "Robin Forgot")
    role = admin.get_by_role("region", name="Change role")
    role.get_by_label("Role").select_option(label="Clinic admin")
    role.get_by_role("button", name="Change role").click()
    expect(admin.get_by_role("status").filter(has_text="Robin Forgot is now Clinic admin.")).to_be_visible()
    check_page(admin, "member view after role change")
    role.get_by_label("Role").select_option(label="Staff")
    role.get_by_role("button", name="Change role").click()
    expect(admin.get_by_role("status").filter(has_text="Robin Forgot is now Staff.")).to_be_visible()
    nav = admin.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Users", exact=True).click()
    nav.get_by_role("link", name="Audit Log").click()
    expect(admin.get_by_role("cell", name="Clinic admin → Staff")).to_be_visible()
    expect(admin.get_by_role("cell", name="Staff → Clinic admin")).to_be_visible()


def test_membership_with_the_keyboard_only(new_page, mailbox):
    admin = new_page()
    keyboard_log_in(admin, "kbdm-admin")
    expect(heading(admin, re.compile("^Welcome"))).to_be_visible()
    admin.goto("/users/")
    tab_to(admin, admin.get_by_role("link", name="Add user"))
    admin.keyboard.press("Enter")
    expect(heading(admin, "Add user")).to_be_visible()
    type_into(admin, admin.get_by_label("First name"), "Kim")
    type_into(admin, admin.get_by_label("Last name"), "Keys")
    type_into(admin, admin.get_by_label("Email"), "kim.keys@example.com")
    tab_to(admin, admin.get_by_role("button", name="Send invitation"))
    admin.keyboard.press("Enter")
    expect(heading(admin, "Kim Keys")).to_be_visible()

    invitee = new_page()
    invitee.goto(mailbox.link_to("kim.keys@example.com", "/accounts/invitation/"))
    expect(heading(invitee, "Set your password")).to_be_visible()
    type_into(invitee, invitee.get_by_label("New password", exact=True), NEW_PASSWORD)
    type_into(invitee, invitee.get_by_label("Confirm new password"), NEW_PASSWORD)
    invitee.keyboard.press("Enter")
    expect(heading(invitee, re.compile("^Welcome"))).to_be_visible()  # no Mandatory 2FA here: Home

    # The admin deactivates Kim: confirm, and Kim's open session ends at once.
    tab_to(admin, admin.get_by_role("button", name="Deactivate"))
    admin.keyboard.press("Enter")
    expect(heading(admin, "Deactivate Kim Keys?")).to_be_visible()
    check_page(admin, "confirm deactivate")
    tab_to(admin, admin.get_by_role("button", name="Deactivate"))
    admin.keyboard.press("Space")
    expect(admin.get_by_role("status").filter(has_text="Kim Keys has been deactivated")).to_be_visible()
    expect(admin.get_by_role("button", name="Reactivate")).to_be_visible()
    expect(admin.get_by_role("button", name="Disable Two-Factor Authentication")).to_have_count(0)
    check_page(admin, "member deactivated")
    admin.set_viewport_size({"width": 375, "height": 812})
    check_page(admin, "member deactivated")
    admin.set_viewport_size({"width": 1280, "height": 900})
    # The Users list counts active members only, and does not say a leaver "needs" set-up.
    member_page = admin.url
    admin.goto("/users/")
    summary = admin.get_by_role("status").filter(has_text="users have 2FA enabled")
    expect(summary).to_contain_text("deactivated user")
    check_page(admin, "users with a deactivated member")
    admin.set_viewport_size({"width": 375, "height": 812})
    check_page(admin, "users with a deactivated member")
    admin.set_viewport_size({"width": 1280, "height": 900})
    admin.goto("/users/?twofa=none")
    expect(admin.get_by_role("cell", name="Keys, Kim")).to_have_count(0)
    admin.goto(member_page)
    invitee.reload()
    expect(heading(invitee, "Log in")).to_be_visible()
    log_in(invitee, "kim.keys@example.com", NEW_PASSWORD)
    expect(invitee.get_by_role("alert").filter(has_text="The username or password is incorrect.")).to_be_visible()

    # Forgot password, keyboard only: no link is sent to a deactivated account, the answer is the same.
    invitee.goto("/")
    tab_to(invitee, invitee.get_by_role("link", name="Forgot your password?"))
    invitee.keyboard.press("Enter")
    type_into(invitee, invitee.get_by_label("Username or email"), "kim.keys@example.com")
    invitee.keyboard.press("Enter")
    expect(heading(invitee, "Check your email")).to_be_visible()
    sent = mailbox.count_to("kim.keys@example.com")

    # Reactivated, Kim signs in again.
    tab_to(admin, admin.get_by_role("button", name="Reactivate"))
    admin.keyboard.press("Enter")
    expect(admin.get_by_role("status").filter(has_text="Kim Keys can sign in again.")).to_be_visible()
    invitee.goto("/")
    type_into(invitee, invitee.get_by_label("Username"), "kim.keys@example.com")
    type_into(invitee, invitee.get_by_label("Password"), NEW_PASSWORD)
    invitee.keyboard.press("Enter")
    expect(heading(invitee, re.compile("^Welcome"))).to_be_visible()
    assert mailbox.count_to("kim.keys@example.com") == sent + 1  # the reactivation notice, no reset link
