"""The user list and the view page cost a fixed number of queries."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic_auth.twofactor.totp import services as totp_services
from users.models import User
from tests.conftest import Browser

# Today: list 5 unfiltered (session, user, clinic, the count that is also the 2FA counts, one page
# of users), 6 filtered or searched (the list's count and the clinic's 2FA counts differ),
# view page 5. One spare for the session's once-a-minute last-seen write.
LIST_BUDGET = 7
DETAIL_BUDGET = 7  # 6, plus one for "Where they are signed in"


def add_members(clinic, count: int) -> list[User]:
    """`count` users of the clinic (cheaply, with bulk_create), every other one with 2FA."""
    start = User.objects.count()
    members = User.objects.bulk_create(
        User(
            clinic=clinic,
            username=f"member{n:04}",
            first_name="Member",
            last_name=f"No{n:04}",
            email=f"member{n:04}@example.com",
            password="!",
        )
        for n in range(start, start + count)
    )
    devices = [totp_services.totp_setup_begin(user=member) for member in members[::2]]
    for device in devices:  # saved, not a queryset update(), so User.twofa_enrolled follows
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return members


@pytest.fixture
def admin_client(clinic_admin) -> Client:
    c = Browser()
    c.force_login(clinic_admin)
    assert c.get(reverse("home")).status_code == 200  # the 2FA gate is cached from here on
    return c


@pytest.fixture(params=[3, 300], ids=["3-users", "300-users"])
def members(request, clinic, clinic_admin) -> list[User]:
    return add_members(clinic, request.param - 1)  # the admin is one of them


def queries_for(c: Client, url: str, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert c.get(url, params).status_code == 200
    return len(captured)


LIST_VIEWS = [
    {},
    {"sort": "-2fa"},
    {"sort": "2fa", "page": "last"},
    {"sort": "-name", "page": "2"},
    {"twofa": "none", "page": "last"},
    {"q": "MEMBER"},
]


@pytest.mark.parametrize("params", LIST_VIEWS, ids=["default", "by-2fa", "by-2fa-up-last-page", "page-2", "no-2fa-last-page", "search"])
def test_user_list_stays_within_budget(admin_client, members, params, django_assert_max_num_queries):
    with django_assert_max_num_queries(LIST_BUDGET):
        response = admin_client.get(reverse("user_list"), params)

    assert response.status_code == 200
    if "q" in params:  # a search counts its matches instead of the clinic's enrolment
        assert f"{len(members)} users match “{params['q']}”" in response.content.decode()
    else:
        enrolled = len(members[::2])
        assert f"{enrolled} of {len(members) + 1} users have 2FA enabled" in response.content.decode()


def test_view_page_stays_within_budget(admin_client, members, django_assert_max_num_queries):
    for member in (members[0], members[-1]):  # one with 2FA when there are 300, one without
        with django_assert_max_num_queries(DETAIL_BUDGET):
            response = admin_client.get(reverse("user_detail", args=[member.pk]))
        assert response.status_code == 200


def test_a_hundred_times_more_users_cost_not_one_more_query(clinic, clinic_admin, admin_client, clinic_factory):
    members = add_members(clinic, 2)
    small_list = [queries_for(admin_client, reverse("user_list"), params) for params in LIST_VIEWS]
    small_detail = queries_for(admin_client, reverse("user_detail", args=[members[0].pk]))

    members += add_members(clinic, 297)
    add_members(clinic_factory(), 50)  # other clinics' users change nothing either
    large_list = [queries_for(admin_client, reverse("user_list"), params) for params in LIST_VIEWS]
    large_detail = queries_for(admin_client, reverse("user_detail", args=[members[-1].pk]))

    assert large_list == small_list
    assert large_detail == small_detail
