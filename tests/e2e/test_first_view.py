"""A page opens at its own title, not scrolled to a code box further down."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .pages import check_page, enable_2fa_from_profile, heading, log_in

pytestmark = pytest.mark.e2e

SCROLL_AND_FOCUS = """() => ({
    scrollY: window.scrollY,
    focused: document.activeElement && document.activeElement !== document.body
        ? document.activeElement.outerHTML.slice(0, 120) : null,
})"""


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1366, 768), (375, 812)], ids=lambda v: str(v))
def test_forced_setup_opens_at_its_heading_notice_and_step_1(new_page, width, height):
    page = new_page(width=width, height=height)
    log_in(page, "forced-staff")
    expect(heading(page, "Set up Two-Factor Authentication")).to_be_visible()
    page.wait_for_load_state("load")
    state = page.evaluate(SCROLL_AND_FOCUS)
    assert state["scrollY"] == 0, f"the set-up page opened scrolled {state['scrollY']} px down ({state['focused']})"
    expect(heading(page, "Set up Two-Factor Authentication")).to_be_in_viewport(ratio=1)
    expect(page.get_by_text("Your clinic requires two-factor authentication")).to_be_in_viewport(ratio=1)
    expect(page.get_by_role("heading", name="Install an authenticator app")).to_be_in_viewport(ratio=1)
    # The first Tab still starts at the skip link, then the page reads from the top.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()


def test_my_profile_opens_at_its_heading_without_the_disable_code_box_focused(new_page):
    page = new_page(width=1280, height=800)
    log_in(page, "calm-staff")
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    enable_2fa_from_profile(page, username="calm-staff")
    expect(heading(page, "My Profile")).to_be_visible()
    for width, height in ((1280, 800), (375, 812)):
        page.set_viewport_size({"width": width, "height": height})
        page.reload()
        expect(heading(page, "My Profile")).to_be_in_viewport(ratio=1)
        state = page.evaluate(SCROLL_AND_FOCUS)
        assert state["scrollY"] == 0, f"My Profile opened scrolled {state['scrollY']} px down"
        assert state["focused"] is None, f"My Profile opened with focus on {state['focused']}"
        check_page(page, "profile with 2FA enabled, first view")
