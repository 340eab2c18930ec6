"""Every error a browser can reach is the app's own page with a way back,
at both widths, checked like every other page (axe-core, no sideways scroll, screenshot)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .pages import check_page, heading, log_in

pytestmark = pytest.mark.e2e

# Recovery codes became a page of its own on a GET (POST-redirect-GET), so it is not here.
POST_ONLY = ["/accounts/logout/", "/accounts/two-factor/disable/"]


def expect_error_page(page, response, status: int, title: str, name: str, *, way_back: str = "Go to the home page"):
    assert response.status == status, f"{name}: {response.status}"
    expect(heading(page, title)).to_be_visible()
    expect(page.get_by_role("link", name=way_back)).to_be_visible()
    check_page(page, name)


@pytest.mark.parametrize("width", [375, 1280], ids=["375px", "1280px"])
def test_error_pages_are_the_apps_own(new_page, width):
    page = new_page(width=width, height=800)
    # Before logging in: a damaged address (400), a bookmarked logout (405), an expired form (CSRF).
    query = "&".join(f"f{i}=1" for i in range(1001))
    response = page.goto(f"/accounts/login/?{query}")
    expect_error_page(page, response, 400, "Request not understood", "error 400",
                      way_back="Go to the login page")
    response = page.goto("/accounts/logout/")
    expect_error_page(page, response, 405, "This page opens from a button", "error 405 signed out",
                      way_back="Go to the login page")
    page.goto("/accounts/login/")
    page.context.clear_cookies()  # the CSRF cookie is gone, as after a browser restart
    page.get_by_label("Username").fill("errors-staff")
    page.get_by_label("Password").fill("anything")
    with page.expect_response(re.compile("/accounts/login/")) as posted:
        page.get_by_role("button", name="Log in").click()
    expect_error_page(page, posted.value, 403, "The form expired", "error csrf",
                      way_back="Go to the login page")

    log_in(page, "errors-staff")
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()
    response = page.goto("/no-such-page/")
    expect_error_page(page, response, 404, "Page not found", "error 404")
    response = page.goto("/users/")
    expect_error_page(page, response, 403, "You don't have access to this page", "error 403")
    for path in POST_ONLY:  # Back button, bookmark or typed address
        response = page.goto(path)
        expect_error_page(page, response, 405, "This page opens from a button", f"error 405 {path}")
        # The way back works, and nothing was done: still signed in.
        page.get_by_role("link", name="Go to the home page").click()
        expect(heading(page, re.compile("^Welcome"))).to_be_visible()
