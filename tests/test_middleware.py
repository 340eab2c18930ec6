"""TwoFactorMiddleware, over HTTP: what each gate lets through and how it refuses."""

import re

import pytest
from django.urls import reverse

from tests.conftest import next_code

SETUP = reverse("two_factor_setup")
CHALLENGE = reverse("two_factor_challenge")

# Paths that start like an exempt view (or static files) but resolve to something else.
TRICK_PATHS = [
    "/accounts/logout/../admin/",
    "/static/../admin/",
    "/static/..%2fadmin/",
    "/accounts/logout/%2e%2e/admin/",
    "/accounts/two-factor/setup/../../../admin/",
    "/accounts/two-factor/../../home/",
    "/accounts/logout/admin/",
    "/accounts/login/../../users/",
    "/accounts/logout;/admin/",
    "/static/css/../../admin/",
]


@pytest.fixture
def setup_client(client, clinic, staff):
    """Unenrolled member of a clinic with Mandatory 2FA: the SETUP gate."""
    clinic.mandatory_2fa = True
    clinic.save()
    client.force_login(staff)
    return client


@pytest.fixture
def challenge_client(client, staff, enrol, login):
    """Enrolled member who has passed the password but not the code: the CHALLENGE gate."""
    device, _ = enrol(staff)
    client.logout()
    login(staff)
    client.device = device
    return client


@pytest.fixture(params=["setup", "challenge"])
def gated(request):
    """(client, the page its gate sends to, the JSON error it names)."""
    if request.param == "setup":
        return request.getfixturevalue("setup_client"), SETUP, "two_factor_setup_required"
    return request.getfixturevalue("challenge_client"), CHALLENGE, "two_factor_required"


@pytest.mark.django_db
def test_open_gate_lets_requests_through(client, staff):
    client.force_login(staff)
    response = client.get(reverse("profile"))
    assert response.status_code == 200
    assert response.wsgi_request.twofa_gate == "open"


@pytest.mark.django_db
def test_verified_session_is_let_through(challenge_client):
    challenge_client.post(CHALLENGE, {"code": next_code(challenge_client.device)})
    response = challenge_client.get(reverse("profile"))
    assert response.status_code == 200
    assert response.wsgi_request.twofa_gate == "verified"


@pytest.mark.django_db
def test_get_is_redirected_with_the_full_path_as_next(gated):
    client, target, _ = gated
    response = client.get(reverse("user_list"), {"q": "smith", "page": "2"})
    assert response.status_code == 302
    assert response.url == f"{target}?next=%2Fusers%2F%3Fq%3Dsmith%26page%3D2"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_are_redirected_to_the_gate_page(gated, method):
    client, target, _ = gated
    response = getattr(client, method)(reverse("profile"))
    assert response.status_code == 302 and response.url == target


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers", [{"HTTP_ACCEPT": "application/json"}, {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}]
)
def test_json_requests_get_a_403_json_body_naming_the_gate_page(gated, headers):
    client, target, error = gated
    for response in (client.get(reverse("home"), **headers), client.post(reverse("home"), **headers)):
        assert response.status_code == 403
        assert response.json() == {"error": error, "redirect": target}


@pytest.mark.django_db
def test_the_gate_page_itself_is_reachable_and_shows_no_navigation(gated):
    client, target, _ = gated
    response = client.get(target)
    assert response.status_code == 200
    html = response.content.decode()
    assert "My Profile" not in html and 'href="/home/"' not in html
    assert "Log out" in html


@pytest.mark.django_db
def test_challenge_gate_cannot_use_setup(challenge_client):
    response = challenge_client.get(SETUP)
    assert response.status_code == 302 and response.url.startswith(CHALLENGE)
    response = challenge_client.post(SETUP, {"code": "123456"})
    assert response.status_code == 302 and response.url == CHALLENGE


@pytest.mark.django_db
def test_setup_gate_cannot_use_the_challenge(setup_client):
    response = setup_client.get(CHALLENGE)
    assert response.status_code == 302 and response.url.startswith(SETUP)
    response = setup_client.post(CHALLENGE, {"code": "123456"})
    assert response.status_code == 302 and response.url == SETUP


@pytest.mark.django_db
@pytest.mark.parametrize("path", TRICK_PATHS)
def test_path_tricks_never_yield_content(gated, path):
    client, target, _ = gated
    response = client.get(path)
    assert response.status_code == 302, (path, response.status_code)
    assert response.url.startswith(target)
    response = client.get(path, follow=True)
    assert response.request["PATH_INFO"] == target and response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/logout/../admin/", "/static/../admin/"])
def test_path_tricks_are_not_the_admin_for_a_verified_operator_either(client, user_factory, enrol, path):
    """Even a session allowed everywhere gets a 404 there: the path is not the admin."""
    operator = user_factory(clinic=None, is_staff=True, is_superuser=True)
    enrol(operator)
    assert client.get("/admin/").status_code == 200
    assert client.get(path).status_code == 404


@pytest.mark.django_db
def test_logout_is_exempt(gated):
    client, _, _ = gated
    assert client.get(reverse("logout")).status_code == 405  # POST only, but not redirected
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response.url == reverse("login")
    assert client.get(reverse("home")).url.startswith(reverse("login"))


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["login", "root"])
def test_login_pages_say_who_is_signed_in_and_continue_without_looping(gated, name):
    client, target, _ = gated
    url = reverse(name)
    for query in ["", f"?next={url}", "?next=/accounts/login/", "?next=/"]:
        response = client.get(url + query, follow=True)
        assert response.status_code == 200 and response.redirect_chain == [], (url + query, response.redirect_chain)
        assert "You are signed in as" in response.content.decode()
        # "Continue as ..." leads on to the step this session is at, without a loop.
        continue_url = re.search(r'<form method="get" action="([^"]+)">', response.content.decode()).group(1)
        onward = client.get(continue_url, follow=True)
        assert onward.status_code == 200 and onward.request["PATH_INFO"] == target, (url + query, onward.redirect_chain)
        assert len(onward.redirect_chain) <= 2


@pytest.mark.django_db
def test_static_files_are_served_in_every_gate(gated):
    client, _, _ = gated
    for path in ["/static/css/app.css", "/static/js/app.js"]:
        response = client.get(path)
        assert response.status_code == 200, path


@pytest.mark.django_db
def test_anonymous_requests_are_left_to_the_login_requirement(client):
    response = client.get("/admin/", follow=True)
    assert response.status_code == 200
    assert response.request["PATH_INFO"] == reverse("login")  # our sign-in, not the admin's own form


@pytest.mark.django_db
def test_request_user_is_the_user_itself_once_read_and_loaded_once(client, staff, django_assert_num_queries):
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory
    from django.utils.functional import LazyObject

    from users.middleware import AuthenticationMiddleware

    client.force_login(staff)
    request = RequestFactory().get("/")
    request.session = client.session
    AuthenticationMiddleware(lambda r: None).process_request(request)
    assert isinstance(request.user, LazyObject)  # nothing loaded until something asks
    with django_assert_num_queries(2):  # the session, then the user with their clinic
        assert request.user.is_authenticated
        assert request.user.pk == staff.pk and request.user.clinic.name == staff.clinic.name
    assert type(request.user) is type(staff) and request.user.pk == staff.pk

    anonymous = RequestFactory().get("/")
    anonymous.session = client.session.__class__()
    AuthenticationMiddleware(lambda r: None).process_request(anonymous)
    assert not anonymous.user.is_authenticated
    assert isinstance(anonymous.user, AnonymousUser)


@pytest.mark.django_db
def test_the_2fa_gate_sees_the_user_itself_and_pages_render_it(client, staff):
    client.force_login(staff)
    response = client.get(reverse("profile"))
    assert response.status_code == 200
    assert type(response.wsgi_request.user) is type(staff)
    assert staff.username.encode() in response.content


def test_the_middleware_check_accepts_a_subclass_of_djangos_authentication_middleware(settings):
    from clinic_auth.twofactor.checks import check_middleware

    assert "users.middleware.AuthenticationMiddleware" in settings.MIDDLEWARE
    assert check_middleware(None) == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "users.middleware.AuthenticationMiddleware"]
    assert [e.id for e in check_middleware(None)] == ["twofactor.E001"]
    settings.MIDDLEWARE = ["django.contrib.auth.middleware.AuthenticationMiddleware", *settings.MIDDLEWARE]
    assert check_middleware(None) == []


@pytest.mark.django_db
def test_a_proxy_read_after_logout_leaves_the_anonymous_user_in_place(client, staff):
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from users.middleware import AuthenticationMiddleware

    client.force_login(staff)
    request = RequestFactory().get("/")
    request.session = client.session
    AuthenticationMiddleware(lambda r: None).process_request(request)
    proxy = request.user
    request.user = AnonymousUser()  # as logout() does
    assert proxy.pk == staff.pk  # the proxy still answers for the session's user...
    assert isinstance(request.user, AnonymousUser)  # ...but does not put it back in place


def test_the_middleware_check_skips_a_middleware_that_is_a_function(settings):
    from clinic_auth.twofactor.checks import check_middleware

    settings.MIDDLEWARE = ["tests.test_middleware.function_middleware", *settings.MIDDLEWARE]
    assert check_middleware(None) == []


def function_middleware(get_response):
    return get_response
