"""Staged rollout in the browser: readiness and the count before Save, the grace banner, and the
one-time sign-in code from issue to a new authenticator. Every page is axe-core checked."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from .pages import (
    check_page,
    enable_2fa_from_profile,
    enter_setup_code,
    heading,
    log_in,
    log_out,
    pass_challenge,
    scan_setup_page,
    totp,
)
from .test_help_article import open_edit_clinic

pytestmark = pytest.mark.e2e


def test_readiness_and_the_count_before_a_one_click_save(new_page):
    admin = new_page()
    log_in(admin, "ready-admin")
    enable_2fa_from_profile(admin, username="ready-admin")
    open_edit_clinic(admin)
    expect(admin.get_by_text("1 of 2 members has not set up 2FA")).to_be_visible()
    notice = admin.get_by_text("1 member will be asked to set up 2FA when you save")
    expect(notice).to_be_hidden()
    expect(admin.get_by_role("radio", name="Now")).to_be_checked()  # the help article's behaviour by default
    admin.get_by_label("Mandatory 2FA").check()
    expect(notice).to_be_visible()
    check_page(admin, "edit clinic newly ticked")
    admin.get_by_label("Mandatory 2FA").uncheck()
    expect(notice).to_be_hidden()
    admin.get_by_label("Mandatory 2FA").check()
    admin.get_by_role("button", name="Save").click()  # one click: no confirmation step
    expect(heading(admin, "Clinic Settings")).to_be_visible()
    expect(admin.get_by_role("status").filter(has_text="1 member will be asked to set up 2FA.")).to_be_visible()
    check_page(admin, "clinic settings after mandatory on")

    # The link beside the checkbox: the Users list filtered to members who have not set up 2FA.
    admin.get_by_role("button", name="Edit Clinic").click()
    admin.get_by_role("link", name="See who").click()
    expect(heading(admin, "Users")).to_be_visible()
    expect(admin.get_by_label("2FA set-up")).to_have_value("none")
    expect(admin.get_by_role("cell", name="ready-staff", exact=True)).to_be_visible()
    expect(admin.get_by_role("cell", name="ready-admin", exact=True)).to_have_count(0)
    check_page(admin, "users not set up")

    staff = new_page()
    log_in(staff, "ready-staff")
    expect(heading(staff, "Set up Two-Factor Authentication")).to_be_visible()


def test_grace_banner_until_the_date(new_page):
    in_six_days = datetime.now(timezone.utc).date() + timedelta(days=6)
    admin = new_page()
    log_in(admin, "grace-admin")
    enable_2fa_from_profile(admin, username="grace-admin")
    open_edit_clinic(admin)
    admin.get_by_label("Mandatory 2FA").check()
    admin.get_by_role("radio", name=re.compile("^A date")).check()
    admin.get_by_label("Date", exact=True).fill(in_six_days.isoformat())
    check_page(admin, "edit clinic with a date")
    admin.get_by_role("button", name="Save").click()
    expect(heading(admin, "Clinic Settings")).to_be_visible()
    expect(admin.get_by_text(f"From {in_six_days.day} {in_six_days:%b %Y}")).to_be_visible()
    expect(admin.get_by_text("1 member not yet set up")).to_be_visible()
    # The date is said with the save, in Users, and on the member's status.
    short = f"{in_six_days.day} {in_six_days:%b}"
    expect(admin.get_by_role("status").filter(has_text=f"Mandatory 2FA from {short}: 1 member still to set up")).to_be_visible()
    admin.get_by_role("navigation", name="Main").get_by_role("button", name="Users", exact=True).click()
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users", exact=True).click()
    expect(admin.get_by_role("status").filter(has_text=f"Mandatory 2FA from {short}; 1 still to set up")).to_be_visible()
    expect(admin.get_by_text(f"Set up before {short}").first).to_be_visible()
    check_page(admin, "users with a scheduled date")
    admin.set_viewport_size({"width": 375, "height": 812})
    check_page(admin, "users with a scheduled date")
    admin.set_viewport_size({"width": 1280, "height": 900})

    staff = new_page()
    log_in(staff, "grace-staff")
    expect(heading(staff, re.compile("^Welcome"))).to_be_visible()  # never blocking work
    banner = staff.get_by_role("region", name="Two-factor authentication reminder")
    expect(banner).to_contain_text(
        f"Your clinic requires two-factor authentication from {in_six_days.day} {in_six_days:%b} (6 days left)."
    )
    expect(banner.get_by_role("link", name="Set up now")).to_have_attribute("href", "/accounts/two-factor/setup/")
    check_page(staff, "home with grace banner")
    # One box saying it, not the banner and Home's own notice too; at phone width as well.
    expect(staff.get_by_text("Two-factor authentication is not set up on your account")).to_have_count(0)
    staff.set_viewport_size({"width": 375, "height": 812})
    check_page(staff, "home with grace banner")
    staff.set_viewport_size({"width": 1280, "height": 900})
    staff.get_by_role("link", name="My Profile").click()
    expect(heading(staff, "My Profile")).to_be_visible()
    expect(banner).to_be_visible()  # on every page
    banner.get_by_role("button", name="Dismiss").click()
    expect(heading(staff, "My Profile")).to_be_visible()
    expect(banner).to_have_count(0)
    staff.get_by_role("link", name="Home").click()
    expect(banner).to_have_count(0)  # for the rest of the session
    expect(staff.get_by_text("Two-factor authentication is not set up on your account")).to_be_visible()  # Home's own
    check_page(staff, "home after dismissing")
    log_out(staff)
    log_in(staff, "grace-staff")
    expect(banner).to_be_visible()  # a new session shows it again
    banner.get_by_role("link", name="Set up now").click()
    expect(heading(staff, "Set up Two-Factor Authentication")).to_be_visible()


def test_one_time_code_from_issue_to_a_new_authenticator(new_page):
    staff = new_page()
    log_in(staff, "lost-staff")
    old_secret, _ = enable_2fa_from_profile(staff, username="lost-staff")
    log_out(staff)

    # The phone is lost; the admin issues a code and reads it over the phone.
    admin = new_page()
    log_in(admin, "lost-admin")
    admin.get_by_role("navigation", name="Main").get_by_role("button", name="Users", exact=True).click()
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users", exact=True).click()
    admin.get_by_role("row").filter(has=admin.get_by_role("cell", name="lost-staff", exact=True)).get_by_role(
        "button", name="View"
    ).click()
    section = admin.get_by_role("region", name="Disable 2FA")
    expect(section.get_by_role("button", name="Disable Two-Factor Authentication")).to_be_visible()
    section.get_by_role("button", name="Issue a one-time sign-in code").click()
    expect(heading(admin, "One-time sign-in code")).to_be_visible()
    check_page(admin, "issue one-time code")
    admin.get_by_role("button", name="Issue the code").click()
    shown = admin.get_by_label("One-time sign-in code").inner_text()
    assert re.fullmatch(r"\d{4} \d{4}", shown), shown
    check_page(admin, "one-time code shown")
    # A reload shows the code no more and issues nothing: it says so and offers a new one. The
    # code already read to the member keeps working (below).
    admin.reload()
    expect(admin.get_by_label("One-time sign-in code")).to_have_count(0)
    expect(admin.get_by_role("status").filter(has_text="was shown once and is not shown again")).to_be_visible()
    expect(admin.get_by_role("button", name="Issue a new code")).to_be_visible()
    check_page(admin, "one-time code page reloaded")
    admin.set_viewport_size({"width": 375, "height": 812})
    check_page(admin, "one-time code page reloaded")
    admin.set_viewport_size({"width": 1280, "height": 900})

    log_in(staff, "lost-staff")
    expect(heading(staff, "Two-Factor Authentication")).to_be_visible()
    staff.get_by_label("Verification Code").fill(shown)
    staff.get_by_role("button", name="Verify").click()
    expect(heading(staff, "Set up Two-Factor Authentication")).to_be_visible()
    expect(staff.get_by_text("Your old app keeps working until you enter a code from the new one")).to_be_visible()
    check_page(staff, "setup after one-time code")
    new_secret = scan_setup_page(staff, username="lost-staff")
    assert new_secret != old_secret
    enter_setup_code(staff, totp(new_secret))
    expect(staff.get_by_role("status").filter(has_text="Your new authenticator app is set up.")).to_be_visible()
    expect(heading(staff, "My Profile")).to_be_visible()
    log_out(staff)

    # The old app no longer works; the code does not work twice; the new app does.
    log_in(staff, "lost-staff")
    staff.get_by_label("Verification Code").fill(totp(old_secret, offset_steps=1))
    staff.get_by_role("button", name="Verify").click()
    expect(staff.get_by_role("alert").filter(has_text="That code is not valid")).to_be_visible()
    staff.get_by_label("Verification Code").fill(shown)
    staff.get_by_role("button", name="Verify").click()
    expect(staff.get_by_role("alert").filter(has_text="That code is not valid")).to_be_visible()
    pass_challenge(staff, new_secret)

    # The audit log tells the story, filtered to the member.
    admin.get_by_role("link", name="Cancel").click()
    admin.get_by_role("navigation", name="Main").get_by_role("button", name="Users", exact=True).click()
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Audit Log").click()
    admin.get_by_label("Member (username)").fill("lost-staff")
    admin.get_by_role("button", name="Filter").click()
    for event in ("One-time sign-in code issued", "One-time sign-in code used to sign in", "Authenticator app replaced"):
        expect(admin.get_by_role("cell", name=event, exact=True)).to_be_visible()
    expect(admin.get_by_role("link", name="Export CSV")).to_have_attribute("href", re.compile(r"member=lost-staff"))
    check_page(admin, "audit log filtered")


@pytest.mark.parametrize("width", [1280, 375])
def test_edit_clinic_date_box_follows_the_choice_and_the_count_includes_you(new_page, width):
    admin = new_page()
    log_in(admin, "tz-admin")
    open_edit_clinic(admin)
    admin.set_viewport_size({"width": width, "height": 900})
    mandatory = admin.get_by_label("Mandatory 2FA")
    now, a_date = admin.get_by_role("radio", name="Now"), admin.get_by_role("radio", name=re.compile("^A date"))
    date_box = admin.get_by_label("Date", exact=True)
    expect(date_box).to_be_disabled()  # unticked: nothing to date
    expect(now).to_be_disabled()
    mandatory.check()
    expect(admin.get_by_text("2 members will be asked to set up 2FA when you save")).to_be_visible()
    expect(admin.get_by_text("That includes you: you'll set it up next.")).to_be_visible()
    expect(now).to_be_checked()
    expect(date_box).to_be_disabled()  # Now: no date
    a_date.check()
    expect(date_box).to_be_enabled()
    check_page(admin, "edit clinic choosing a date")
    now.check()
    expect(date_box).to_be_disabled()
    mandatory.uncheck()
    expect(date_box).to_be_disabled()
    # Time zones: typed to search among IANA's own names, common ones first, no old aliases.
    zone = admin.get_by_label("Time zone")
    expect(zone).to_have_attribute("list", "time-zone-list")
    options = admin.locator("#time-zone-list option")
    expect(options.first).to_have_attribute("value", "America/New_York")
    expect(admin.locator("#time-zone-list option[value='Europe/Paris']")).to_have_count(1)
    expect(admin.locator("#time-zone-list option[value='Africa/Asmera']")).to_have_count(0)
    check_page(admin, "edit clinic unticked")
