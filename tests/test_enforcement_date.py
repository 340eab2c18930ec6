"""Readiness before turning Mandatory 2FA on, and an enforcement date
evaluated in the clinic's own time zone (controlled time: before, on and after the date)."""

import re
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic_auth.twofactor import policy
from clinic_auth.twofactor import session as twofa_session
from clinic_auth.twofactor.models import AuditEvent
from clinics.forms import ClinicForm
from clinics.models import Clinic
from tests.conftest import Browser

SETUP = reverse("two_factor_setup")
HOME = reverse("home")
DEADLINE = date(2026, 12, 5)
POLICY_QUERY = '"clinics_clinic"."mandatory_from" AS "mandatory_from"'  # policy.clinic_enforcement's query


def at(moment: datetime):
    """Controlled time: django.utils.timezone.now returns `moment` (aware, UTC)."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=dt_timezone.utc)


def make_pending(clinic: Clinic, *, tz: str, starts_on: date = DEADLINE) -> Clinic:
    Clinic.objects.filter(pk=clinic.pk).update(mandatory_2fa=True, mandatory_from=starts_on, time_zone=tz)
    clinic.refresh_from_db()
    return clinic


def edit_clinic(client, clinic: Clinic, **extra):
    data = {"name": clinic.name, "address": clinic.address, "phone": clinic.phone, **extra}
    return client.post(reverse("clinic_edit", args=[clinic.pk]), data)


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# --- the rule itself, in the clinic's time zone -------------------------------------------


@pytest.mark.parametrize(
    "tz, moment, required",
    [
        # Auckland is UTC+13 in December: 5 Dec begins there at 11:00 UTC on 4 Dec.
        ("Pacific/Auckland", utc(2026, 12, 4, 10, 59, 59), False),
        ("Pacific/Auckland", utc(2026, 12, 4, 11, 0, 0), True),
        # Los Angeles is UTC-8: 5 Dec begins there at 08:00 UTC on 5 Dec, when UTC's date already says 5 Dec.
        ("America/Los_Angeles", utc(2026, 12, 5, 7, 59, 59), False),
        ("America/Los_Angeles", utc(2026, 12, 5, 8, 0, 0), True),
        ("UTC", utc(2026, 12, 4, 23, 59, 59), False),
        ("UTC", utc(2026, 12, 5, 0, 0, 0), True),  # on the date
        ("UTC", utc(2026, 12, 9, 12, 0, 0), True),  # after it
    ],
)
def test_the_date_is_the_clinics_local_date(tz, moment, required):
    enforcement = policy.Enforcement(mandatory=True, starts_on=DEADLINE, time_zone=tz)
    with at(moment):
        assert enforcement.required_now() is required
        assert enforcement.pending() is not required


def test_without_a_date_or_without_the_flag():
    now_rule = policy.Enforcement(mandatory=True, starts_on=None, time_zone="UTC")
    assert now_rule.required_now() and not now_rule.pending()
    off = policy.Enforcement(mandatory=False, starts_on=DEADLINE, time_zone="UTC")
    assert not off.required_now() and not off.pending()


# --- what members meet: before, on and after the date -------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tz, before, on",
    [
        ("Pacific/Auckland", utc(2026, 12, 4, 10, 0), utc(2026, 12, 4, 11, 0)),
        ("America/Los_Angeles", utc(2026, 12, 5, 7, 0), utc(2026, 12, 5, 8, 0)),
    ],
)
def test_before_the_date_a_banner_on_the_date_set_up(client, clinic, staff, tz, before, on):
    make_pending(clinic, tz=tz)
    with at(before):
        client.force_login(staff)  # sessions expire by the (controlled) clock too
        response = client.get(HOME)
        assert response.status_code == 200
        assert "Your clinic requires two-factor authentication from 5 Dec (1 day left)." in text(response)
        assert 'href="/accounts/two-factor/setup/">Set up now</a>' in response.content.decode()
        assert client.get(reverse("profile")).status_code == 200  # never blocking work
    with at(on):
        # The same session notices the date passing: the cached gate held "until" that moment.
        response = client.get(HOME)
        assert response.status_code == 302 and response.url.startswith(SETUP)
    later = Browser()
    with at(on + timedelta(days=3)):
        later.force_login(staff)
        assert later.get(reverse("profile")).url.startswith(SETUP)


@pytest.mark.django_db
def test_banner_counts_days_in_the_clinics_time_zone(client, clinic, staff):
    make_pending(clinic, tz="Pacific/Auckland")
    # 29 Nov 12:00 UTC is 30 Nov 01:00 in Auckland: 5 days left there (6 by UTC's date).
    with at(utc(2026, 11, 29, 12, 0)):
        client.force_login(staff)
        assert "from 5 Dec (5 days left)." in text(client.get(HOME))


@pytest.mark.django_db
def test_after_a_fresh_login_on_the_date_the_password_leads_to_setup(client, clinic, staff, login):
    make_pending(clinic, tz="UTC")
    with at(utc(2026, 12, 5, 0, 0, 1)):
        response = login(staff, follow=True)
        assert response.request["PATH_INFO"] == SETUP


@pytest.mark.django_db
def test_before_the_date_login_goes_home_with_the_banner(client, clinic, staff, login):
    make_pending(clinic, tz="UTC")
    with at(utc(2026, 12, 1, 9, 0)):
        response = login(staff, follow=True)
        assert response.request["PATH_INFO"] == HOME
        assert "(4 days left)" in text(response)
        # One box saying it: Home's own "not set up" notice gives way to the banner.
        assert "Two-factor authentication is not set up on your account" not in text(response)


@pytest.mark.django_db
def test_banner_is_dismissed_for_this_session_only(clinic, staff):
    make_pending(clinic, tz="UTC")
    first, second = Client(), Client()
    with at(utc(2026, 12, 1, 9, 0)):
        first.force_login(staff)
        second.force_login(staff)
        response = first.post(reverse("two_factor_grace_dismiss"), {"next": reverse("profile")})
        assert response.status_code == 302 and response.url == reverse("profile")
        assert "requires two-factor authentication from" not in text(first.get(HOME))
        assert "requires two-factor authentication from" not in text(first.get(reverse("profile")))
        assert "requires two-factor authentication from 5 Dec" in text(second.get(HOME))


@pytest.mark.django_db
def test_dismiss_refuses_an_offsite_next(client, clinic, staff):
    make_pending(clinic, tz="UTC")
    with at(utc(2026, 12, 1, 9, 0)):
        client.force_login(staff)
        response = client.post(reverse("two_factor_grace_dismiss"), {"next": "https://evil.example/"})
    assert response.url == HOME


@pytest.mark.django_db
def test_no_banner_for_enrolled_members_nor_without_a_date(client, clinic, staff, enrol):
    make_pending(clinic, tz="UTC")
    enrol(staff)
    assert "requires two-factor authentication from" not in text(client.get(HOME))
    other = Browser()
    Clinic.objects.filter(pk=clinic.pk).update(mandatory_from=None, mandatory_2fa=False)
    other.force_login(staff)
    assert "requires two-factor authentication from" not in text(other.get(HOME))


@pytest.mark.django_db
def test_banner_costs_no_query_for_an_enrolled_member_and_gate_none_for_verified(client, clinic, staff, enrol):
    make_pending(clinic, tz="UTC", starts_on=date.today() + timedelta(days=3))
    enrol(staff)
    client.get(HOME)
    with CaptureQueriesContext(connection) as with_gate:
        client.get(HOME)
    # The policy's own question (the clinic's flag, date and zone) is never asked: the gate and banner are cached.
    assert not [q for q in with_gate if POLICY_QUERY in q["sql"]]
    assert len(with_gate) == 2, [q["sql"] for q in with_gate]  # the session, and the user with their clinic


@pytest.mark.django_db
def test_grace_gate_is_cached_until_the_date(client, clinic, staff):
    """During the grace period, the gate is cached too: a second page asks the clinic nothing."""
    make_pending(clinic, tz="UTC")
    with at(utc(2026, 12, 1, 9, 0)):
        client.force_login(staff)
        client.get(HOME)
        state = client.session[twofa_session.STATE_KEY]
        assert state["gate"] == "open" and state["until"] == utc(2026, 12, 5).timestamp()
        with CaptureQueriesContext(connection) as queries:
            assert "(4 days left)" in text(client.get(HOME))
    assert not [q for q in queries if POLICY_QUERY in q["sql"]]


# --- Edit Clinic: readiness, "Require from", confirmation of the count --------------------


@pytest.fixture
def admin_client(clinic_admin, enrol):
    c = Client()
    enrol(clinic_admin, http_client=c)
    return c


@pytest.mark.django_db
def test_edit_clinic_shows_readiness_with_a_link_to_the_filtered_list(admin_client, clinic, user_factory, enrol):
    for _ in range(3):
        user_factory()
    enrol(user_factory(), http_client=Client())
    response = admin_client.get(reverse("clinic_edit", args=[clinic.pk]))
    html = response.content.decode()
    assert "3 of 5 members have not set up 2FA" in text(response)
    assert 'href="/users/?twofa=none">See who</a>' in html
    # The count Save will act on, shown (by static/js/app.js) when the box is newly ticked: no extra click.
    assert "3 members will be asked to set up 2FA when you save" in text(response)
    assert 'data-confirm-for="id_mandatory_2fa"' in html
    # "Now" is the default, as in the help article.
    assert re.search(r'<input type="radio" name="require_from" value="now"[^>]*checked', html)


@pytest.mark.django_db
def test_ticking_and_saving_once_applies_now_and_names_the_count(admin_client, clinic, staff, user_factory):
    user_factory()
    response = edit_clinic(admin_client, clinic, mandatory_2fa="on")
    assert response.status_code == 302
    clinic.refresh_from_db()
    assert clinic.mandatory_2fa and clinic.mandatory_from is None
    page = admin_client.get(response.url)
    assert "2 members will be asked to set up 2FA." in text(page)
    staff_client = Browser()
    staff_client.force_login(staff)
    assert staff_client.get(HOME).url.startswith(SETUP)
    event = AuditEvent.objects.get(action=AuditEvent.Action.MANDATORY_ON)
    assert event.detail == "from now"


@pytest.mark.django_db
def test_a_date_up_to_30_days_ahead(admin_client, clinic, staff):
    with at(utc(2026, 11, 29, 9, 0)):
        too_far = edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date", mandatory_from="2026-12-30")
        assert too_far.status_code == 200 and "Choose a date from today to 30 days ahead." in text(too_far)
        past = edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date", mandatory_from="2026-11-28")
        assert past.status_code == 200
        missing = edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date")
        assert "Choose the date from which 2FA is required" in text(missing)
        Clinic.objects.filter(pk=clinic.pk).update(mandatory_2fa=False)
        assert not Clinic.objects.get(pk=clinic.pk).mandatory_2fa
        ok = edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date", mandatory_from="2026-12-29",
                         time_zone="Europe/London")
        assert ok.status_code == 302
        clinic.refresh_from_db()
        assert (clinic.mandatory_2fa, clinic.mandatory_from, clinic.time_zone) == (True, date(2026, 12, 29), "Europe/London")
        settings_page = text(admin_client.get(ok.url))
        assert "From 29 Dec 2026 — 1 member not yet set up." in settings_page
        assert "Europe/London" in settings_page
        staff_client = Browser()
        staff_client.force_login(staff)
        assert staff_client.get(HOME).status_code == 200
    event = AuditEvent.objects.filter(action=AuditEvent.Action.MANDATORY_ON).latest("id")
    assert event.detail == "from 2026-12-29 (Europe/London)"


@pytest.mark.django_db
def test_unknown_time_zone_is_refused(admin_client, clinic):
    response = edit_clinic(admin_client, clinic, time_zone="Mars/Olympus_Mons")
    assert response.status_code == 200
    clinic.refresh_from_db()
    assert clinic.time_zone == "UTC"


@pytest.mark.django_db
def test_moving_the_date_bumps_stamps_and_is_audited(admin_client, clinic, staff):
    with at(utc(2026, 11, 29, 9, 0)):
        edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date", mandatory_from="2026-12-05")
        staff.refresh_from_db()
        stamp = staff.twofa_stamp
        edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date", mandatory_from="2026-12-10")
        staff.refresh_from_db()
        assert staff.twofa_stamp == stamp + 1
        # Saving again with the same date changes nothing.
        edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date", mandatory_from="2026-12-10")
    clinic.refresh_from_db()
    with at(utc(2026, 12, 20, 9, 0)):
        # Once the date is past, the clinic's other details can still be saved with it unchanged.
        form = ClinicForm({"name": clinic.name, "mandatory_2fa": "on", "require_from": "date",
                           "mandatory_from": "2026-12-10"}, instance=clinic)
        assert form.is_valid(), form.errors
    staff.refresh_from_db()
    assert staff.twofa_stamp == stamp + 1
    event = AuditEvent.objects.get(action=AuditEvent.Action.MANDATORY_DATE_SET)
    assert event.detail == "from 2026-12-10 (UTC)"
    # Choosing Now ends the grace period at once. (On the same controlled day as the edits above: the
    # admin's session was last seen then, and the real clock would end it 12 hours later.)
    with at(utc(2026, 11, 29, 9, 10)):
        edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="now")
    clinic.refresh_from_db()
    assert clinic.mandatory_from is None


@pytest.mark.django_db
def test_turning_it_off_clears_the_date(admin_client, clinic):
    make_pending(clinic, tz="UTC")
    edit_clinic(admin_client, clinic, require_from="date", mandatory_from="2026-12-05")
    clinic.refresh_from_db()
    assert (clinic.mandatory_2fa, clinic.mandatory_from) == (False, None)


# --- the Users list's 2FA-status filter -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("twofa, expected", [("", {"admin", "ready", "waiting"}), ("enabled", {"admin", "ready"}),
                                             ("none", {"waiting"}), ("bogus", {"admin", "ready", "waiting"})])
def test_users_list_filters_by_2fa_status(admin_client, user_factory, enrol, twofa, expected):
    enrol(user_factory(username="ready"), http_client=Client())
    user_factory(username="waiting")
    response = admin_client.get(reverse("user_list"), {"twofa": twofa})
    assert {member.username for member in response.context["page"].object_list} == expected


@pytest.mark.django_db
def test_users_filter_survives_paging_and_sorting(admin_client, clinic):
    from users.models import User

    User.objects.bulk_create(User(clinic=clinic, username=f"w{n:03}", last_name=f"W{n:03}", password="!") for n in range(60))
    html = admin_client.get(reverse("user_list"), {"twofa": "none"}).content.decode()
    assert 'href="?q=&amp;sort=name&amp;twofa=none&amp;page=2"' in html
    assert "?q=&amp;twofa=none&amp;sort=-name" in html
    assert '<option value="none" selected>' in html


@pytest.fixture
def long_sessions(settings):
    # The clock jumps days ahead here; sessions must outlive it (their age is not under test).
    settings.SESSION_COOKIE_AGE = 30 * 24 * 3600


@pytest.mark.django_db
def test_changing_the_time_zone_moves_the_end_of_open_grace_periods(long_sessions, admin_client, clinic, staff):
    """A session cached "until midnight in UTC"; moving the clinic to Auckland must end its grace 13 h earlier."""
    with at(utc(2026, 12, 4, 10, 0)):
        assert edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date",
                           mandatory_from="2026-12-05").status_code == 302
        member = Browser()
        member.force_login(staff)
        assert member.get(HOME).status_code == 200
    with at(utc(2026, 12, 4, 12, 0)):  # 5 Dec 01:00 in Auckland, still 4 Dec in UTC
        assert member.get(HOME).status_code == 200
        edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date", mandatory_from="2026-12-05",
                    time_zone="Pacific/Auckland")
        assert member.get(HOME).url.startswith(SETUP)
    event = AuditEvent.objects.filter(action=AuditEvent.Action.MANDATORY_DATE_SET).get()
    assert event.detail == "from 2026-12-05 (Pacific/Auckland)"


@pytest.mark.django_db
def test_time_zone_alone_changes_no_stamp_without_a_date(admin_client, clinic, staff):
    staff.refresh_from_db()
    stamp = staff.twofa_stamp
    assert edit_clinic(admin_client, clinic, time_zone="Europe/Paris").status_code == 302
    clinic.refresh_from_db()
    staff.refresh_from_db()
    assert (clinic.time_zone, staff.twofa_stamp) == ("Europe/Paris", stamp)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.MANDATORY_DATE_SET).exists()


@pytest.mark.django_db
def test_a_scheduled_date_is_said_with_the_save_in_users_and_on_the_member(admin_client, clinic, staff):
    with at(utc(2026, 12, 1, 9, 0)):
        saved = edit_clinic(admin_client, clinic, mandatory_2fa="on", require_from="date", mandatory_from="2026-12-14",
                            time_zone="UTC")
        assert saved.status_code == 302
        after_save = text(admin_client.get(saved.url))
        assert "Mandatory 2FA from 14 Dec: 1 member still to set up sees a reminder until then." in after_save
        assert "members will be asked" not in after_save and "member will be asked" not in after_save
        users = text(admin_client.get(reverse("user_list")))
        assert "Mandatory 2FA from 14 Dec; 1 still to set up" in users and "Set up before 14 Dec" in users
        member = text(admin_client.get(reverse("user_detail", args=[staff.pk])))
        assert "Set up before 14 Dec" in member and "Required but not set up" not in member
        Clinic.objects.filter(pk=clinic.pk).update(mandatory_from=date(2026, 12, 1))  # the day has come
        users = text(admin_client.get(reverse("user_list")))
        assert "Mandatory 2FA is on for this clinic" in users and "Required but not set up" in users
        assert "Set up before" not in users
