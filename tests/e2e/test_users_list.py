"""The Users list and the Audit Log on a phone and on a desktop.

On a phone each user is a card with name, role, 2FA status and View, and nothing scrolls
sideways (check_page fails a page, or a table inside it, that does; tests/e2e/test_every_page.py
covers the Audit Log). On a desktop the table uses the width:
names and last-login times stay on one line.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .pages import check_page, heading, log_in

pytestmark = pytest.mark.e2e

TEXT_LINES = """cell => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""


def open_users(page):
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Users", exact=True).click()
    nav.get_by_role("link", name="Users", exact=True).click()
    expect(heading(page, "Users")).to_be_visible()


def test_on_a_phone_each_user_is_a_card_with_everything_on_screen(new_page):
    page = new_page(width=375, height=812)
    log_in(page, "many-admin")
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    open_users(page)
    check_page(page, "users list, 62 users")
    rows = page.get_by_role("row").filter(has=page.get_by_role("button", name="View"))
    expect(rows).to_have_count(50)
    for index in (0, 1, 49):
        row = rows.nth(index)
        row.scroll_into_view_if_needed()
        for part in (
            row.get_by_role("cell").first,  # the name
            row.get_by_role("cell", name=re.compile("^(Staff|Clinic admin)$")),
            row.get_by_role("cell", name=re.compile("Enabled|Not set up")),
            row.get_by_role("button", name="View"),
        ):
            box = part.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, (index, part, box)
    # Item 7: the last page is one tap away, and a search says what it found and how to clear it.
    page.get_by_role("link", name="Last page").click()
    expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    page.get_by_role("searchbox", name="Search users").fill("many-member-07")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text("1 user matches “many-member-07” · Clear search")
    expect(rows).to_have_count(1)
    check_page(page, "users list, searched")
    page.get_by_role("link", name="Clear search").click()
    expect(page.get_by_role("status")).to_have_text("0 of 62 users have 2FA enabled")
    expect(rows).to_have_count(50)
    # The View button the help article points to opens the user, from the card.
    card = page.get_by_role("row").filter(has=page.get_by_role("cell", name="many-staff", exact=True))
    card.get_by_role("button", name="View").click()
    expect(heading(page, "Robin Many")).to_be_visible()


def test_on_a_desktop_names_and_last_login_stay_on_one_line(new_page):
    page = new_page(width=1280, height=800)
    log_in(page, "many-admin")
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    open_users(page)
    check_page(page, "users list, 62 users")
    table = page.get_by_role("table")
    assert table.bounding_box()["width"] >= 1280 * 0.85, "the table leaves much of the window empty"
    names = table.locator("tbody td:first-child")
    last_logins = table.locator("tbody td:nth-child(6)")
    expect(names).to_have_count(50)
    for column in (names, last_logins):
        lines = column.evaluate_all(f"cells => cells.map({TEXT_LINES})")
        assert set(lines) == {1}, f"cells wrap onto several lines: {lines}"
    # Sorted by last name and shown that way.
    expect(names.first).to_have_text("Many, Alex")
    expect(last_logins.first).to_have_text(re.compile(r"^\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC$"))


LABEL_ABOVE_CONTROL = """label => {
    const control = document.getElementById(label.htmlFor);
    const l = label.getBoundingClientRect(), c = control.getBoundingClientRect();
    return {above: l.bottom <= c.top + 1, left: Math.abs(l.left - c.left) < 2, fits: c.right <= window.innerWidth,
            placeholderFits: control.placeholder ? control.scrollWidth <= control.clientWidth : true};
}"""


@pytest.mark.parametrize("width", [375, 1280])
def test_each_filter_label_sits_above_its_own_control_and_security_events_are_a_click_from_clinic_settings(new_page, width):
    page = new_page(width=width, height=812)
    log_in(page, "many-admin")
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    open_users(page)
    for name in ("Search users", "Show", "2FA set-up"):
        label = page.locator("form[role=search] label").filter(has_text=name)
        placed = label.evaluate(LABEL_ABOVE_CONTROL)
        assert placed == {"above": True, "left": True, "fits": True, "placeholderFits": True}, (name, placed)
    check_page(page, "users filters")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Clinic Settings").click()
    expect(heading(page, "Clinic Settings")).to_be_visible()
    page.get_by_role("link", name="Security events").click()
    expect(heading(page, "Audit Log")).to_be_visible()
    expect(page.get_by_text(re.compile("^Security events in "))).to_be_visible()
    check_page(page, "audit log from clinic settings")
