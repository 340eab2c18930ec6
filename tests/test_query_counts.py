"""The 2FA middleware costs no query once a session has passed the gate."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic_auth.twofactor import services
from clinic_auth.twofactor import session as twofa_session

TWO_FACTOR_MIDDLEWARE = "clinic_auth.twofactor.middleware.TwoFactorMiddleware"
PAGES = [
    ("home", False),
    ("profile", False),
    ("clinic_settings", True),
    ("clinic_audit_log", True),
    ("user_list", False),
]


def client_for(session_client: Client) -> Client:
    """A new client (so it builds its middleware chain from the current settings) on the same session."""
    other = Client()
    other.cookies = session_client.cookies
    return other


def count_queries(client: Client, url: str, *, gated: bool) -> int:
    client.get(url)  # warm-up: anything written once per session happens here
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    # Proof that this client's middleware chain really is the one asked for.
    assert hasattr(response.wsgi_request, "twofa_gate") is gated
    return len(queries)


@pytest.fixture
def verified(client, clinic, clinic_admin, enrol):
    """A clinic admin in a Mandatory 2FA clinic, enrolled and verified in `client`'s session."""
    clinic.mandatory_2fa = True
    clinic.save()
    enrol(clinic_admin)
    assert client.session[twofa_session.STATE_KEY]["gate"] == "verified"
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("name, with_pk", PAGES)
def test_middleware_adds_no_query_for_a_verified_session(verified, clinic, settings, django_assert_num_queries, name, with_pk):
    url = reverse(name, args=[clinic.pk] if with_pk else [])
    original = list(settings.MIDDLEWARE)
    assert TWO_FACTOR_MIDDLEWARE in original

    settings.MIDDLEWARE = [m for m in original if m != TWO_FACTOR_MIDDLEWARE]
    without = count_queries(client_for(verified), url, gated=False)
    assert without > 0

    settings.MIDDLEWARE = original
    with_middleware = client_for(verified)
    with_middleware.get(url)  # the same warm-up as without it
    with django_assert_num_queries(without):
        response = with_middleware.get(url)
    assert response.status_code == 200
    assert response.wsgi_request.twofa_gate == "verified"


@pytest.mark.django_db
def test_the_count_does_notice_the_gate_being_decided_again(verified, clinic_admin, settings):
    """Control: when the stamp changes the middleware does query, and the count shows it."""
    url = reverse("home")
    original = list(settings.MIDDLEWARE)
    settings.MIDDLEWARE = [m for m in original if m != TWO_FACTOR_MIDDLEWARE]
    without = count_queries(client_for(verified), url, gated=False)

    settings.MIDDLEWARE = original
    client = client_for(verified)
    assert count_queries(client, url, gated=True) == without
    services.twofa_stamp_bump(user=clinic_admin)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    assert len(queries) > without
    # ... and once decided again, it is back to no extra query.
    assert count_queries(client, url, gated=True) == without


@pytest.mark.django_db
def test_the_signed_in_user_comes_with_their_clinic_in_one_query(verified, clinic):
    """users.backends.ClinicUserBackend: Home shows the clinic's name without a query of its own."""
    verified.get(reverse("home"))
    with CaptureQueriesContext(connection) as queries:
        response = verified.get(reverse("home"))
    assert clinic.name in response.content.decode()
    user_loads = [q["sql"] for q in queries.captured_queries if 'FROM "users_user"' in q["sql"] and '"users_user"."id" =' in q["sql"]]
    assert any('"clinics_clinic"' in sql for sql in user_loads)
    assert not [q for q in queries.captured_queries if q["sql"].startswith('SELECT "clinics_clinic"')]
