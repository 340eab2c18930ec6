"""The navigation marks where you are, and every page has the app's icon."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from tests.conftest import Browser


@pytest.fixture
def admin_client(clinic_admin) -> Client:
    c = Browser()
    c.force_login(clinic_admin)
    return c


def nav_of(response) -> str:
    assert response.status_code == 200
    return re.search(r'<nav class="site-nav".*?</nav>', response.content.decode(), re.S).group(0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, with_pk, current",
    [
        ("home", None, ">Home</a>"),
        ("clinic_settings", "clinic", ">Clinic Settings</a>"),
        ("user_list", None, ">Users</a>"),
        ("clinic_audit_log", "clinic", ">Audit Log</a>"),
        ("profile", None, "My Profile</a>"),
    ],
)
def test_the_link_to_the_current_page_is_marked(admin_client, clinic, name, with_pk, current):
    args = [clinic.pk] if with_pk else []
    nav = nav_of(admin_client.get(reverse(name, args=args)))
    marked = re.findall(r'<a [^>]*aria-current="page"[^>]*>.*?</a>', nav, re.S)
    assert len(marked) == 1 and marked[0].endswith(current), marked


@pytest.mark.django_db
def test_pages_below_a_section_mark_the_section_not_a_page(admin_client, clinic, staff):
    nav = nav_of(admin_client.get(reverse("user_detail", args=[staff.pk])))
    assert 'aria-current="page"' not in nav
    assert re.search(r'class="dropdown-toggle current-section"[^>]*>Users</button>', nav)
    nav = nav_of(admin_client.get(reverse("clinic_edit", args=[clinic.pk])))
    assert re.search(r'class="current-section">Clinic Settings</a>', nav)


@pytest.mark.django_db
def test_every_page_names_the_apps_icon_and_it_is_served(client):
    html = client.get(reverse("login")).content.decode()
    href = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html).group(1)
    response = client.get(href)
    assert response.status_code == 200
    assert b"<svg" in b"".join(response.streaming_content if response.streaming else [response.content])
