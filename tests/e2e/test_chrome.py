"""Spacing and the page chrome, measured in the browser at both widths."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .pages import check_page, gap_between, heading, log_in

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width", [375, 1280], ids=["375px", "1280px"])
def test_spacing_menu_and_favicon(new_page, width):
    page = new_page(width=width, height=800)
    favicon_misses = []
    page.on("response", lambda r: favicon_misses.append(r.url) if "favicon" in r.url and r.status >= 400 else None)
    log_in(page, "calm-admin")
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Home")).to_have_attribute("aria-current", "page")

    # The favicon is the app's own and loads; nothing asks for a missing /favicon.ico.
    icon = page.locator("link[rel=icon]").get_attribute("href")
    response = page.request.get(icon)
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert not favicon_misses, favicon_misses

    # The Users menu opens over the page: the other links stay where they were, the menu on screen.
    profile_link = nav.get_by_role("link", name="My Profile")
    before = profile_link.bounding_box()
    nav.get_by_role("button", name="Users", exact=True).click()
    menu_link = nav.get_by_role("link", name="Audit Log")
    expect(menu_link).to_be_visible()
    assert profile_link.bounding_box() == before, "opening the Users menu moved the other links"
    box = nav.locator("#users-menu").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    check_page(page, "users menu open")
    page.keyboard.press("Escape")

    # Clinic Settings: the Edit Clinic button has room above it; the current page is marked.
    nav.get_by_role("link", name="Clinic Settings").click()
    expect(heading(page, "Clinic Settings")).to_be_visible()
    expect(nav.get_by_role("link", name="Clinic Settings")).to_have_attribute("aria-current", "page")
    mandatory_row = page.locator("dd").filter(has_text="two-factor authentication")
    assert gap_between(mandatory_row, page.get_by_role("button", name="Edit Clinic")) >= 12

    # A second card starts its heading at the card's padding, like the first.
    nav.get_by_role("link", name="My Profile").click()
    expect(heading(page, "My Profile")).to_be_visible()
    for card in page.locator("section.card").all():
        first_heading = card.get_by_role("heading").first
        assert first_heading.bounding_box()["y"] - card.bounding_box()["y"] <= 26, "double padding above a heading"
    expect(profile_link).to_have_attribute("aria-current", "page")
    assert not favicon_misses, favicon_misses



@pytest.mark.parametrize("width", [1280, 375])
def test_the_focus_ring_is_not_the_error_colour_and_an_empty_field_does_not_look_wrong(new_page, width):
    page = new_page(width=width)
    page.goto("/")
    expect(heading(page, "Log in")).to_be_visible()
    username = page.get_by_label("Username")
    untouched_border = username.evaluate("el => getComputedStyle(el).borderTopColor")
    username.focus()
    ring = username.evaluate("el => getComputedStyle(el).outlineColor")
    # What a refused field looks like, by the app's own stylesheet (a field the server refused).
    error_border = page.evaluate(
        """() => {
            const field = document.createElement("div");
            field.className = "field field-error";
            field.innerHTML = "<input type=text>";
            document.body.appendChild(field);
            const color = getComputedStyle(field.querySelector("input")).borderTopColor;
            field.remove();
            return color;
        }"""
    )
    assert error_border != untouched_border  # a refused field looks refused ...
    assert ring not in (error_border, untouched_border)  # ... focus looks like neither
    red, green, blue = map(int, re.findall(r"\d+", ring)[:3])
    assert not (red > 2 * blue and red > 2 * green)  # and is not a red at all
    check_page(page, "login with focus")
