"""The help article with the keyboard alone: Tab to move, Enter and Space to act, typing to fill.

Every element that receives focus on the way must show it (a visible outline or ring, on
screen), so someone who cannot use a mouse always knows where they are.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from .pages import PASSWORD, continue_after_codes, heading, scan_setup_page, totp

pytestmark = pytest.mark.e2e

FOCUS_STATE = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return {
        what: el.tagName.toLowerCase() + ' ' + (el.getAttribute('aria-label') || el.innerText || el.name || el.id || '').trim().slice(0, 40),
        ring: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none',
        onScreen: r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth,
    };
}"""


def tab_to(page: Page, target: Locator, *, limit: int = 40, backwards: bool = False) -> None:
    """Press Tab until `target` has focus, checking that every stop on the way shows its focus."""
    expect(target).to_be_visible()
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        state = page.evaluate(FOCUS_STATE)
        if state is None:
            continue
        assert state["ring"], f"focus is not visible on {state['what']!r}"
        assert state["onScreen"], f"focused {state['what']!r} is off screen"
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{target} never received focus within {limit} Tab presses")


def type_into(page: Page, field: Locator, text: str) -> None:
    tab_to(page, field)
    page.keyboard.type(text)


def keyboard_log_in(page: Page, username: str) -> None:
    page.goto("/")
    expect(heading(page, "Log in")).to_be_visible()
    type_into(page, page.get_by_label("Username"), username)
    type_into(page, page.get_by_label("Password"), PASSWORD)
    page.keyboard.press("Enter")  # submits the form from the field


def test_enabling_and_disabling_2fa_with_the_keyboard_only(new_page):
    # Enabling 2FA Individually, as kbd-staff.
    staff = new_page()
    keyboard_log_in(staff, "kbd-staff")
    expect(heading(staff, re.compile("^Welcome"))).to_be_visible()
    # The first Tab lands on the skip link, which appears on screen.
    staff.keyboard.press("Tab")
    expect(staff.get_by_role("link", name="Skip to main content")).to_be_focused()
    tab_to(staff, staff.get_by_role("link", name="My Profile"))
    staff.keyboard.press("Enter")
    expect(heading(staff, "My Profile")).to_be_visible()
    tab_to(staff, staff.get_by_role("link", name="Enable Two-Factor Authentication"))
    staff.keyboard.press("Enter")
    secret = scan_setup_page(staff, username="kbd-staff")
    type_into(staff, staff.get_by_label("Verification Code"), totp(secret))
    tab_to(staff, staff.get_by_role("button", name="Enable 2FA"))
    staff.keyboard.press("Space")
    expect(staff.get_by_role("status").filter(has_text="2FA is now active")).to_be_visible()
    tab_to(staff, staff.get_by_role("link", name="Continue"))
    continue_after_codes(staff, key="Enter")  # answers "Have you saved your codes?"
    expect(heading(staff, "My Profile")).to_be_visible()  # back where they started
    tab_to(staff, staff.get_by_role("button", name="Log out"))
    staff.keyboard.press("Enter")
    # Wait for the logout POST to land; a goto() while it is in flight aborts one of the two.
    expect(heading(staff, "Log in")).to_be_visible()
    # The next login, with a fresh code.
    keyboard_log_in(staff, "kbd-staff")
    expect(heading(staff, "Two-Factor Authentication")).to_be_visible()
    expect(staff.get_by_label("Verification Code")).to_be_focused()  # autofocus: just type
    staff.keyboard.type(totp(secret, offset_steps=1))
    tab_to(staff, staff.get_by_role("button", name="Verify"))
    staff.keyboard.press("Enter")
    expect(heading(staff, re.compile("^Welcome"))).to_be_visible()

    # Mandatory 2FA on and off again, and Individual 2FA disable, as kbd-admin.
    admin = new_page()
    keyboard_log_in(admin, "kbd-admin")
    expect(heading(admin, re.compile("^Welcome"))).to_be_visible()
    tab_to(admin, admin.get_by_role("link", name="Clinic Settings"))
    admin.keyboard.press("Enter")
    tab_to(admin, admin.get_by_role("button", name="Edit Clinic"))
    admin.keyboard.press("Enter")
    expect(heading(admin, "Edit Clinic")).to_be_visible()
    mandatory = admin.get_by_label("Mandatory 2FA")
    tab_to(admin, mandatory)
    admin.keyboard.press("Space")
    expect(mandatory).to_be_checked()
    admin.keyboard.press("Space")
    expect(mandatory).not_to_be_checked()
    tab_to(admin, admin.get_by_role("button", name="Save"))
    admin.keyboard.press("Enter")
    expect(admin.get_by_role("status").filter(has_text="Clinic settings saved.")).to_be_visible()

    # Users drop-down: Space opens it, Escape closes it and returns focus, Enter opens it again.
    menu_button = admin.get_by_role("button", name="Users", exact=True)
    tab_to(admin, menu_button)
    admin.keyboard.press("Space")
    expect(menu_button).to_have_attribute("aria-expanded", "true")
    users_link = admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users", exact=True)
    tab_to(admin, users_link, limit=3)
    admin.keyboard.press("Escape")
    expect(users_link).to_be_hidden()
    expect(menu_button).to_be_focused()
    admin.keyboard.press("Enter")
    tab_to(admin, users_link, limit=3)
    admin.keyboard.press("Enter")
    expect(heading(admin, "Users")).to_be_visible()
    type_into(admin, admin.get_by_role("searchbox", name="Search users"), "kbd-staff")
    admin.keyboard.press("Enter")
    row = admin.get_by_role("row").filter(has=admin.get_by_role("cell", name="kbd-staff", exact=True))
    expect(admin.get_by_role("row")).to_have_count(2)  # the header and kbd-staff
    tab_to(admin, row.get_by_role("button", name="View"))
    admin.keyboard.press("Enter")
    expect(heading(admin, "Robin Kbd")).to_be_visible()
    tab_to(admin, admin.get_by_role("button", name="Disable Two-Factor Authentication"))
    admin.keyboard.press("Enter")
    expect(heading(admin, "Disable 2FA for Robin Kbd?")).to_be_visible()
    tab_to(admin, admin.get_by_role("button", name="Disable Two-Factor Authentication"))
    admin.keyboard.press("Space")
    expect(admin.get_by_role("status").filter(has_text="now disabled for Robin Kbd")).to_be_visible()
