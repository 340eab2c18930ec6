"""The Users list finds deep pages by key, not OFFSET: the same rows, in the same order."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinic_auth.twofactor.totp import services as totp_services
from users import selectors
from users.models import User


@pytest.fixture
def members(clinic, clinic_admin):
    # Few distinct names, so many rows tie on (last name, first name) and only the username orders them.
    User.objects.bulk_create(
        User(
            clinic=clinic,
            username=f"m{(n * 37) % 263:03}",
            first_name=["Ann", "Bo", "Cy"][n % 3],
            last_name=["Lee", "Ng", "Ode", "Park"][n % 4] + (" Nurse" if n % 5 == 0 else ""),
            email=f"m{n:03}@example.com",
            password="!",
        )
        for n in range(263)
    )
    members = User.objects.filter(clinic=clinic)
    enrolled = [totp_services.totp_setup_begin(user=member) for member in members.order_by("pk")[::3]]
    for device in enrolled:  # saved, not a queryset update(), so User.twofa_enrolled follows
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return members


@pytest.fixture
def other_clinic_user(clinic_factory, user_factory):
    return user_factory(clinic=clinic_factory(), username="m100x", first_name="Bo", last_name="Ng")


def offset_page(clinic, *, query, sort, number, per_page):
    rows = selectors.user_list(clinic=clinic, query=query, sort=sort)
    return [u.pk for u in rows[(number - 1) * per_page : number * per_page]]


@pytest.mark.parametrize("sort", ["name", "-name", "2fa", "-2fa"])
@pytest.mark.parametrize("query", ["", "nurse", "m1"])
def test_every_page_holds_the_rows_offset_would_give(clinic, members, sort, query):
    per_page = 7
    first = selectors.user_page(clinic=clinic, query=query, sort=sort, page=1, per_page=per_page)
    assert first.paginator.num_pages > 3
    seen = []
    for number in first.paginator.page_range:
        page = selectors.user_page(clinic=clinic, query=query, sort=sort, page=number, per_page=per_page)
        got = [u.pk for u in page.object_list]
        assert got == offset_page(clinic, query=query, sort=sort, number=number, per_page=per_page), number
        seen += got
    assert len(seen) == len(set(seen)) == first.paginator.count


def test_a_deep_page_costs_the_same_two_queries_as_the_first(clinic, members):
    counts = []
    for number in (1, 2, 20, 37, "last", "junk"):
        with CaptureQueriesContext(connection) as captured:
            page = selectors.user_page(clinic=clinic, sort="name", page=number, per_page=7)
            list(page.object_list)
        counts.append(len(captured))
        assert page.object_list and all(u.twofa_enrolled is not None for u in page.object_list)
    assert counts == [2] * len(counts)


def test_the_key_never_reaches_another_clinics_users(clinic, members, other_clinic_user):
    # Another clinic's user who sorts in the middle of this clinic's list must not appear on any page.
    ids = set()
    for number in range(1, 40):
        ids |= {u.pk for u in selectors.user_page(clinic=clinic, sort="name", page=number, per_page=7).object_list}
    assert other_clinic_user.pk not in ids and ids == set(members.values_list("pk", flat=True))


@pytest.mark.parametrize("status", ["active", "deactivated"])
@pytest.mark.parametrize("sort", ["name", "-name"])
def test_the_show_filter_pages_by_key_too(clinic, members, status, sort):
    members.filter(pk__in=list(members.order_by("pk").values_list("pk", flat=True)[::4])).update(is_active=False)
    per_page = 5
    first = selectors.user_page(clinic=clinic, sort=sort, status=status, page=1, per_page=per_page)
    assert first.paginator.num_pages > 3
    for number in first.paginator.page_range:
        page = selectors.user_page(clinic=clinic, sort=sort, status=status, page=number, per_page=per_page)
        expected = selectors.user_list(clinic=clinic, sort=sort, status=status)[(number - 1) * per_page : number * per_page]
        assert [u.pk for u in page.object_list] == [u.pk for u in expected], number


@pytest.mark.parametrize("twofa", ["enabled", "none"])
def test_the_2fa_status_filter_pages_by_key_too(clinic, members, twofa):
    per_page = 6
    first = selectors.user_page(clinic=clinic, sort="name", twofa=twofa, page=1, per_page=per_page)
    assert first.paginator.num_pages > 3
    for number in first.paginator.page_range:
        page = selectors.user_page(clinic=clinic, sort="name", twofa=twofa, page=number, per_page=per_page)
        rows = list(page.object_list)
        assert all(u.twofa_enrolled == (twofa == "enabled") for u in rows)
        expected = selectors.user_list(clinic=clinic, sort="name", twofa=twofa)[(number - 1) * per_page : number * per_page]
        assert [u.pk for u in rows] == [u.pk for u in expected], number


@pytest.mark.parametrize("sort", ["2fa", "-2fa"])
@pytest.mark.parametrize("per_page", [7, 50])
def test_the_2fa_sorts_page_by_key_across_the_change_of_status(clinic, members, sort, per_page):
    # Enrolled first (-2fa) or last (2fa), names A to Z within each: one page holds both statuses,
    # and walking every page gives every member once, in OFFSET's order, at two queries a page.
    expected = [u.pk for u in selectors.user_list(clinic=clinic, sort=sort)]
    seen, mixed_pages, counts = [], 0, set()
    number, more = 1, True
    while more:
        with CaptureQueriesContext(connection) as captured:
            page = selectors.user_page(clinic=clinic, sort=sort, page=number, per_page=per_page)
            rows = list(page.object_list)
        counts.add(len(captured))
        mixed_pages += len({u.twofa_enrolled for u in rows}) == 2
        seen += [u.pk for u in rows]
        number, more = number + 1, page.has_next()
    assert seen == expected and len(set(seen)) == len(expected) == members.count()
    assert mixed_pages == 1 and counts == {2}
    assert [u.twofa_enrolled for u in User.objects.filter(pk__in=seen[:1])] == [sort == "-2fa"]
