"""Every error the app can return is the app's own page, with a way back."""

import pytest
from django.test import Client
from django.urls import reverse


HOME = reverse("home")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def assert_app_page(response, status: int, heading: str) -> str:
    assert response.status_code == status
    html = response.content.decode()
    assert 'class="skip-link"' in html and '<link rel="stylesheet" href="/static/css/app.css">' in html  # base.html
    assert f"<h1>{heading}</h1>" in html, html
    assert f'href="{HOME}"' in html  # the way back
    assert "<script>" not in html and "style=" not in html  # nothing the CSP would refuse
    assert set(response["Content-Security-Policy"].split("; ")) == set(CONTENT_SECURITY_POLICY.split("; "))
    return html


@pytest.fixture
def error_urls(settings):
    settings.ROOT_URLCONF = "tests.error_urls"
    settings.DEBUG = False


@pytest.mark.django_db
def test_500_is_the_app_page(error_urls):
    client = Client(raise_request_exception=False)
    html = assert_app_page(client.get("/test-500/"), 500, "Something went wrong")
    assert "Go to the home page" in html


@pytest.mark.django_db
def test_400_is_the_app_page(error_urls):
    assert_app_page(Client().get("/test-400/"), 400, "Request not understood")


@pytest.mark.django_db
def test_400_from_too_many_fields_in_the_address(client):
    query = "&".join(f"f{i}=1" for i in range(1001))  # DATA_UPLOAD_MAX_NUMBER_FIELDS is 1000
    assert_app_page(client.get(f"{reverse('login')}?{query}"), 400, "Request not understood")


@pytest.mark.django_db
def test_404_is_the_app_page(client, staff):
    client.force_login(staff)
    html = assert_app_page(client.get("/no-such-page/"), 404, "Page not found")
    assert "Go to the home page" in html


@pytest.mark.django_db
def test_403_is_the_app_page(client, staff):
    client.force_login(staff)
    assert_app_page(client.get(reverse("user_list")), 403, "You don't have access to this page")


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["logout", "two_factor_disable_own"])
def test_405_for_a_post_only_address_opened_by_hand_is_the_app_page(client, staff, enrol, name):
    enrol(staff)  # leaves the client signed in and past the code step
    response = client.get(reverse(name))
    html = assert_app_page(response, 405, "This page opens from a button")
    assert response["Allow"].startswith("POST")
    assert "Nothing has changed." in html


@pytest.mark.django_db
def test_405_for_a_visitor_who_is_not_signed_in_offers_the_login_page(client):
    html = assert_app_page(client.get(reverse("logout")), 405, "This page opens from a button")
    assert "Go to the login page" in html


@pytest.mark.django_db
def test_405_stays_json_free_of_html_for_scripts(client):
    response = client.get(reverse("logout"), headers={"Accept": "application/json"})
    assert response.status_code == 405 and response.content == b""


@pytest.mark.django_db
def test_csrf_failure_is_the_app_page(staff):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": staff.username, "password": "x"})
    html = assert_app_page(response, 403, "The form expired")
    assert "Go to the login page" in html
