"""Every page, on a phone (375 px) and on a desktop: axe-core WCAG 2.2 A/AA, no sideways scrolling,
a QR code that still scans, and a screenshot of each kept in artifacts/e2e/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .pages import (
    check_page,
    continue_after_codes,
    enter_setup_code,
    expect_2fa_active,
    gap_between,
    heading,
    log_in,
    log_out,
    scan_setup_page,
    totp,
)

pytestmark = pytest.mark.e2e

PAGES = {
    "login", "home", "profile", "setup", "recovery codes", "challenge", "clinic settings",
    "edit clinic", "users list", "user view", "confirm", "audit log",
    "change password", "recovery codes already shown", "login after logging out", "challenge with a recovery code",
}  # fmt: skip


@pytest.mark.parametrize(
    ("width", "prefix", "clinic"),
    [(375, "narrow", "Narrow Street Clinic"), (1280, "wide", "Wide Road Clinic")],  # tests/e2e/seed_e2e.py
    ids=["375px", "1280px"],
)
def test_every_page_is_accessible_and_fits(new_page, width, prefix, clinic):
    checked = set()

    def check(page, name):
        check_page(page, f"{name} ({prefix})")
        checked.add(name)

    staff = new_page(width=width, height=800)
    log_in(staff, f"{prefix}-staff", check="login")
    checked.add("login")
    expect(heading(staff, re.compile("^Welcome"))).to_be_visible()
    check(staff, "home")
    banner = staff.get_by_role("banner")
    expect(banner).to_contain_text(clinic)  # the clinic's name in the header
    if width >= 1024:  # My Profile sits in the top-right corner, as the help article says
        box, header = staff.get_by_role("link", name="My Profile").bounding_box(), banner.bounding_box()
        assert box["x"] > width * 0.6 and box["y"] + box["height"] <= header["y"] + header["height"], box
    # On a phone the navigation wraps but My Profile is still one tap away.
    staff.get_by_role("link", name="My Profile").click()
    check(staff, "profile")
    staff.get_by_role("link", name="Change password").click()
    expect(heading(staff, "Change password")).to_be_visible()
    check(staff, "change password")
    staff.get_by_role("link", name="Cancel").click()
    expect(heading(staff, "My Profile")).to_be_visible()
    staff.get_by_role("link", name="Enable Two-Factor Authentication").click()
    # The QR code decodes from a screenshot at this width too.
    secret = scan_setup_page(staff, username=f"{prefix}-staff")
    check(staff, "setup")
    enter_setup_code(staff, totp(secret))
    expect_2fa_active(staff)
    check(staff, "recovery codes")
    continue_after_codes(staff)
    # The Back button (or a bookmark) on the codes page: they are not shown twice.
    staff.go_back()
    expect(staff.get_by_text("already shown once")).to_be_visible()
    check(staff, "recovery codes already shown")
    staff.get_by_role("link", name="Back to My Profile").click()
    log_out(staff)
    expect(staff.get_by_role("status").filter(has_text="You have logged out.")).to_be_visible()
    check(staff, "login after logging out")
    log_in(staff, f"{prefix}-staff")
    expect(heading(staff, "Two-Factor Authentication")).to_be_visible()
    check(staff, "challenge")
    staff.get_by_role("link", name="Lost your phone? Use a recovery code").click()
    expect(staff.get_by_label("Recovery Code")).to_be_visible()
    check(staff, "challenge with a recovery code")

    admin = new_page(width=width, height=800)
    log_in(admin, f"{prefix}-admin")
    nav = admin.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Clinic Settings").click()
    expect(heading(admin, "Clinic Settings")).to_be_visible()
    check(admin, "clinic settings")
    admin.get_by_role("button", name="Edit Clinic").click()
    expect(heading(admin, "Edit Clinic")).to_be_visible()
    check(admin, "edit clinic")
    nav.get_by_role("button", name="Users", exact=True).click()
    nav.get_by_role("link", name="Users", exact=True).click()
    expect(heading(admin, "Users")).to_be_visible()
    check(admin, "users list")
    admin.get_by_role("row").filter(has=admin.get_by_role("cell", name=f"{prefix}-staff", exact=True)).get_by_role(
        "button", name="View"
    ).click()
    expect(heading(admin, f"Robin {prefix.capitalize()}")).to_be_visible()
    check(admin, "user view")
    admin.get_by_role("button", name="Disable Two-Factor Authentication").click()
    expect(heading(admin, re.compile("^Disable 2FA for"))).to_be_visible()
    check(admin, "confirm")
    # Cancel sits apart from the red button, beside it or (on a phone) below it.
    form = admin.get_by_role("main").locator("form")
    assert gap_between(form.get_by_role("button", name="Disable Two-Factor Authentication"),
                       form.get_by_role("link", name="Cancel")) >= 8
    nav.get_by_role("button", name="Users", exact=True).click()
    nav.get_by_role("link", name="Audit Log").click()
    expect(heading(admin, "Audit Log")).to_be_visible()
    check(admin, "audit log")

    assert checked == PAGES


def test_the_checks_can_fail(new_page):
    """The harness itself: a page with a real violation and a too-wide element must not pass."""
    page = new_page(width=375)
    page.goto("/")
    page.evaluate("""() => {
        const input = document.createElement('input');  // a text box with no label
        document.querySelector('main').append(input);
    }""")
    with pytest.raises(AssertionError, match="label"):
        check_page(page, "self-test unlabelled input")
    page.goto("/")
    page.evaluate("() => { document.querySelector('main').append(Object.assign(document.createElement('div'), {style: 'width: 500px; height: 1px'})); }")
    with pytest.raises(AssertionError, match="scrolls sideways"):
        check_page(page, "self-test too wide")
