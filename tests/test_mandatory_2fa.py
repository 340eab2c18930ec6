"""What Mandatory 2FA does to the members of a clinic."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from clinics.models import Clinic
from tests.conftest import PASSWORD, next_code, setup_device, totp_for

SETUP = reverse("two_factor_setup")
CHALLENGE = reverse("two_factor_challenge")
CLINIC_REQUIRES = "Your clinic requires two-factor authentication for every user."


@pytest.fixture
def mandatory(clinic):
    clinic.mandatory_2fa = True
    clinic.save()
    return clinic


def password_step(client, user, next_url=None):
    data = {"username": user.username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("login"), data, follow=True)


def final_path(response) -> str:
    return response.request["PATH_INFO"]


def continue_link(response) -> str:
    return re.search(r'<a class="button primary" href="([^"]*)">Continue</a>', response.content.decode()).group(1)


def edit_clinic(client, clinic: Clinic, *, mandatory: bool, follow=False):
    data = {"name": clinic.name, "address": clinic.address, "phone": clinic.phone}
    if mandatory:
        data["mandatory_2fa"] = "on"
    return client.post(reverse("clinic_edit", args=[clinic.pk]), data, follow=follow)


# --- point 4: unenrolled members are sent to set-up ------------------------


@pytest.mark.django_db
def test_unenrolled_user_lands_on_setup_right_after_the_password_step(client, mandatory, staff):
    response = password_step(client, staff)
    assert response.status_code == 200
    assert final_path(response) == SETUP
    html = response.content.decode()
    assert "<h1>Set up Two-Factor Authentication</h1>" in html
    assert CLINIC_REQUIRES in html
    # Only "Log out" in the navigation: nothing else to wander off to.
    assert "My Profile" not in html and "Clinic Settings" not in html
    assert f'action="{reverse("logout")}"' in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, args",
    [("home", []), ("profile", []), ("password_change", []), ("user_list", []), ("clinic_settings", ["clinic"]),
     ("clinic_audit_log", ["clinic"]), ("admin:index", []), ("admin:users_user_changelist", [])],
)
def test_every_deep_link_leads_to_setup_and_remembers_it(client, mandatory, clinic_admin, name, args):
    client.force_login(clinic_admin)
    url = reverse(name, args=[mandatory.pk for _ in args])
    response = client.get(url + "?page=2")
    assert response.status_code == 302
    assert response.url == f"{SETUP}?next={url.replace('/', '%2F')}%3Fpage%3D2"
    followed = client.get(url, follow=True)
    assert final_path(followed) == SETUP and followed.status_code == 200


@pytest.mark.django_db
def test_posts_are_refused_until_setup_and_change_nothing(client, mandatory, clinic_admin, staff):
    """An admin without a device cannot even switch the requirement off to escape it."""
    client.force_login(clinic_admin)
    response = edit_clinic(client, mandatory, mandatory=False)
    assert response.status_code == 302 and response.url == SETUP
    mandatory.refresh_from_db()
    assert mandatory.mandatory_2fa is True
    response = client.post(reverse("password_change"), {"old_password": PASSWORD, "new_password1": "x" * 20, "new_password2": "x" * 20})
    assert response.status_code == 302 and response.url == SETUP
    clinic_admin.refresh_from_db()
    assert clinic_admin.check_password(PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [{"HTTP_ACCEPT": "application/json"}, {"HTTP_ACCEPT": "text/html;q=0.5, application/json"},
     {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_json_requests_get_403_naming_the_setup_url(client, mandatory, staff, headers, method):
    client.force_login(staff)
    response = getattr(client, method)(reverse("profile"), **headers)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "two_factor_setup_required", "redirect": SETUP}


@pytest.mark.django_db
def test_no_redirect_loop_from_any_entry_point(client, mandatory, staff):
    client.force_login(staff)
    for url in ["/", reverse("login")]:  # the login page says who is signed in, and stays put
        response = client.get(url, follow=True)
        assert response.status_code == 200 and response.redirect_chain == [], url
        assert "You are signed in as" in response.content.decode()
    for url in [CHALLENGE, reverse("home"), "/admin/", "/admin/login/", "/no/such/page/"]:
        response = client.get(url, follow=True)
        assert final_path(response) == SETUP, url
        assert response.status_code == 200 and len(response.redirect_chain) <= 2, (url, response.redirect_chain)


@pytest.mark.django_db
def test_logout_stays_reachable(client, mandatory, staff):
    client.force_login(staff)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response.url == reverse("login")
    response = client.get(reverse("home"))
    assert response.url.startswith(reverse("login"))  # logged out, not sent to set-up
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_static_files_stay_reachable(client, mandatory, staff):
    client.force_login(staff)
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)


@pytest.mark.django_db
def test_after_confirming_the_user_continues_to_the_page_first_asked_for(client, mandatory, staff):
    wanted = reverse("profile") + "?tab=security"
    assert client.get(wanted).url == f"{reverse('login')}?next=/profile/%3Ftab%3Dsecurity"
    response = password_step(client, staff, next_url=wanted)
    assert final_path(response) == SETUP
    assert f'name="next" value="{wanted}"' in response.content.decode()
    device = setup_device(client)
    response = client.post(SETUP, {"code": totp_for(device), "next": wanted}, follow=True)
    assert response.status_code == 200
    assert "Your recovery codes" in response.content.decode()
    assert continue_link(response) == wanted
    assert client.get(wanted).status_code == 200
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "evil", ["https://evil.example/", "//evil.example/profile/", "http://testserver.evil.example/", "javascript:alert(1)"]
)
def test_continue_link_never_leaves_the_site(client, mandatory, staff, evil):
    client.force_login(staff)
    page = client.get(SETUP, {"next": evil}).content.decode()
    assert "evil" not in page and "javascript:" not in page
    device = setup_device(client)
    response = client.post(SETUP, {"code": totp_for(device), "next": evil}, follow=True)
    assert response.status_code == 200
    assert continue_link(response) == reverse("home")


# --- point 5: enrolled members are unaffected --------------------------------


@pytest.mark.django_db
def test_enrolled_user_is_asked_for_the_code_as_before(client, mandatory, staff, enrol):
    device, _ = enrol(staff)
    client.logout()
    response = password_step(client, staff)
    assert final_path(response) == CHALLENGE
    assert "<h1>Two-Factor Authentication</h1>" in response.content.decode()
    assert client.get(SETUP).url.startswith(CHALLENGE)  # set-up is not a way around the code
    response = client.post(CHALLENGE, {"code": next_code(device)})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200


# --- point 6: sessions already open when the flag is turned on ---------------


@pytest.mark.django_db
def test_logged_in_users_are_caught_on_their_next_request(clinic, clinic_admin, staff, user_factory, enrol):
    admin_client, staff_client, enrolled_client = Client(), Client(), Client()
    enrol(clinic_admin, http_client=admin_client)
    enrolled_member = user_factory()
    enrol(enrolled_member, http_client=enrolled_client)
    password_step(staff_client, staff)
    assert staff_client.get(reverse("profile")).status_code == 200

    edit_clinic(admin_client, clinic, mandatory=True)

    response = staff_client.get(reverse("profile"))
    assert response.status_code == 302 and response.url.startswith(SETUP)
    # A member who already passed 2FA in this session carries on, and so does the admin.
    assert enrolled_client.get(reverse("profile")).status_code == 200
    assert admin_client.get(reverse("clinic_settings", args=[clinic.pk])).status_code == 200

    edit_clinic(admin_client, clinic, mandatory=False)
    assert staff_client.get(reverse("profile")).status_code == 200


@pytest.mark.django_db
def test_other_clinics_are_not_affected(clinic, clinic_admin, clinic_factory, user_factory, enrol):
    admin_client, outsider_client = Client(), Client()
    enrol(clinic_admin, http_client=admin_client)
    outsider = user_factory(clinic=clinic_factory(name="Other Clinic"))
    outsider_client.force_login(outsider)
    edit_clinic(admin_client, clinic, mandatory=True)
    assert outsider_client.get(reverse("profile")).status_code == 200


@pytest.mark.django_db
def test_turning_the_flag_on_in_the_django_admin_also_catches_open_sessions(clinic, staff, user_factory, enrol):
    operator = user_factory(clinic=None, is_staff=True, is_superuser=True)
    operator_client, staff_client = Client(), Client()
    enrol(operator, http_client=operator_client)
    staff_client.force_login(staff)
    assert staff_client.get(reverse("home")).status_code == 200
    response = operator_client.post(
        reverse("admin:clinics_clinic_change", args=[clinic.pk]),
        {"name": clinic.name, "address": "", "phone": "", "mandatory_2fa": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    clinic.refresh_from_db()
    assert clinic.mandatory_2fa is True
    assert staff_client.get(reverse("home")).url.startswith(SETUP)


# --- point 7: the admin who turns it on without a device ---------------------


@pytest.mark.django_db
def test_admin_without_a_device_who_turns_it_on_is_sent_to_setup_and_told_why(client, clinic, clinic_admin):
    client.force_login(clinic_admin)
    response = edit_clinic(client, clinic, mandatory=True, follow=True)
    settings_url = reverse("clinic_settings", args=[clinic.pk])
    assert [url for url, _ in response.redirect_chain] == [settings_url, f"{SETUP}?next={settings_url.replace('/', '%2F')}"]
    html = response.content.decode()
    assert final_path(response) == SETUP
    assert "Clinic settings saved." in html
    assert CLINIC_REQUIRES in html
    clinic.refresh_from_db()
    assert clinic.mandatory_2fa is True

    device = setup_device(client)
    response = client.post(SETUP, {"code": totp_for(device), "next": settings_url}, follow=True)
    assert continue_link(response) == settings_url
    # Set up and back in: the admin can reach (and change) the settings again.
    html = client.get(settings_url).content.decode()
    assert re.search(r"<dt>Mandatory 2FA</dt><dd>.*?On", html)
