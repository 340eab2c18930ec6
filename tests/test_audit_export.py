"""Audit Log filters (kept in the URL and the page links), stable order, CSV export."""

import csv
import io
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic_auth.twofactor.models import AuditEvent
from clinics.models import Clinic
from clinics.views import neutralise

Action = AuditEvent.Action
BASE = datetime(2026, 11, 20, 12, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def admin_client(clinic_admin, enrol):
    c = Client()
    enrol(clinic_admin, http_client=c)
    AuditEvent.objects.all().delete()  # only the rows each test makes
    return c


def event(clinic, action, *, when, target="", actor="", detail="", ip=None):
    return AuditEvent.objects.create(
        clinic=clinic, action=action, created_at=when, target_username=target, actor_username=actor,
        detail=detail, ip_address=ip,
    )


def export(client, clinic, **params) -> list[list[str]]:
    response = client.get(reverse("clinic_audit_log_csv", args=[clinic.pk]), params)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def listed(client, clinic, **params) -> list[int]:
    return [e.pk for e in client.get(reverse("clinic_audit_log", args=[clinic.pk]), params).context["page"].object_list]


@pytest.fixture
def history(admin_client, clinic, clinic_factory):
    other = clinic_factory(name="Other Clinic")
    rows = {
        "old": event(clinic, Action.DEVICE_CONFIRMED, when=BASE - timedelta(days=5), target="joy", actor="joy"),
        "mid": event(clinic, Action.DISABLED_BY_ADMIN, when=BASE, target="joy", actor="admin", ip="203.0.113.5"),
        "new": event(clinic, Action.DEVICE_CONFIRMED, when=BASE + timedelta(days=2), target="sam", actor="sam"),
        "elsewhere": event(other, Action.DEVICE_CONFIRMED, when=BASE, target="joy", actor="joy"),
    }
    return {k: v.pk for k, v in rows.items()}


@pytest.mark.django_db
def test_filters_by_event_member_and_date_range(admin_client, clinic, history):
    assert listed(admin_client, clinic) == [history["new"], history["mid"], history["old"]]
    assert listed(admin_client, clinic, action="device_confirmed") == [history["new"], history["old"]]
    assert listed(admin_client, clinic, member="JOY") == [history["mid"], history["old"]]
    assert listed(admin_client, clinic, date_from="2026-11-20", date_to="2026-11-20") == [history["mid"]]
    assert listed(admin_client, clinic, date_from="2026-11-21") == [history["new"]]
    assert listed(admin_client, clinic, date_to="2026-11-19") == [history["old"]]
    # An invalid value drops only that filter.
    assert listed(admin_client, clinic, action="nonsense", member="sam") == [history["new"]]


@pytest.mark.django_db
def test_dates_are_whole_days_in_the_clinics_time_zone(admin_client, clinic):
    Clinic.objects.filter(pk=clinic.pk).update(time_zone="Pacific/Auckland")
    # 20 Nov 11:30 UTC is 21 Nov 00:30 in Auckland (UTC+13).
    late = event(clinic, Action.MANDATORY_ON, when=datetime(2026, 11, 20, 11, 30, tzinfo=dt_timezone.utc))
    assert listed(admin_client, clinic, date_from="2026-11-21", date_to="2026-11-21") == [late.pk]
    assert listed(admin_client, clinic, date_to="2026-11-20") == []
    rows = export(admin_client, clinic)
    assert rows[1][0] == "2026-11-21T00:30:00+13:00"


@pytest.mark.django_db
def test_filters_stay_in_the_pagination_links_and_the_export_link(admin_client, clinic):
    AuditEvent.objects.bulk_create(
        AuditEvent(clinic=clinic, action=Action.MANDATORY_ON, created_at=BASE, detail=f"e{n}", target_username="joy")
        for n in range(60)
    )
    html = admin_client.get(reverse("clinic_audit_log", args=[clinic.pk]), {"action": "mandatory_on", "member": "joy"}).content.decode()
    assert 'href="?action=mandatory_on&amp;member=joy&amp;page=2">Older</a>' in html
    assert f'href="{reverse("clinic_audit_log_csv", args=[clinic.pk])}?action=mandatory_on&amp;member=joy">Export CSV</a>' in html


@pytest.mark.django_db
def test_same_moment_rows_have_a_stable_order_across_pages(admin_client, clinic):
    AuditEvent.objects.bulk_create(
        AuditEvent(clinic=clinic, action=Action.MANDATORY_ON, created_at=BASE, detail=f"e{n}") for n in range(75)
    )
    ids = sorted(AuditEvent.objects.values_list("pk", flat=True), reverse=True)
    assert listed(admin_client, clinic) + listed(admin_client, clinic, page=2) == ids
    assert [int(r[5][1:]) for r in export(admin_client, clinic)[1:]] == [74 - n for n in range(75)]


@pytest.mark.django_db
def test_csv_has_exactly_the_filtered_rows_and_columns(admin_client, clinic, history):
    rows = export(admin_client, clinic, member="joy")
    assert rows[0] == ["Time", "Event", "Member", "Actor", "IP address", "Details"]
    assert rows[1:] == [
        ["2026-11-20T12:00:00+00:00", "2FA disabled by an admin", "joy", "admin", "203.0.113.5", ""],
        ["2026-11-15T12:00:00+00:00", "2FA enabled", "joy", "joy", "", ""],
    ]
    assert len(export(admin_client, clinic)) == 4  # header + this clinic's three, never the other clinic's


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_formula_injection_is_neutralised_in_every_cell(admin_client, clinic, value):
    event(clinic, Action.KEY_ADDED, when=BASE, target=value, actor=value, detail=value)
    (row,) = export(admin_client, clinic)[1:]
    assert row[2] == row[3] == row[5] == "'" + value
    assert neutralise("safe =1") == "safe =1"


@pytest.mark.django_db
def test_export_reads_in_chunks_with_a_fixed_number_of_queries(admin_client, clinic):
    AuditEvent.objects.bulk_create(
        AuditEvent(clinic=clinic, action=Action.MANDATORY_ON, created_at=BASE, detail="x") for _ in range(5000)
    )
    with CaptureQueriesContext(connection) as queries:
        rows = export(admin_client, clinic)
    assert len(rows) == 5001
    assert len([q for q in queries if "twofactor_auditevent" in q["sql"]]) <= 3  # one cursor (SQLite may re-run it)


@pytest.mark.django_db
def test_staff_and_other_clinics_cannot_export(client, staff, admin_client, clinic, clinic_factory):
    client.force_login(staff)
    assert client.get(reverse("clinic_audit_log_csv", args=[clinic.pk])).status_code == 403
    other = clinic_factory(name="Other")
    assert admin_client.get(reverse("clinic_audit_log_csv", args=[other.pk])).status_code == 404


def test_the_page_shows_the_csv_columns_in_their_order_and_clinic_settings_links_to_it(admin_client, clinic):
    from clinics.views import CSV_COLUMNS

    event(clinic, Action.INVITED, when=BASE, target="joy", actor="admin", ip="192.0.2.7")
    (_, first_row) = export(admin_client, clinic)
    page = admin_client.get(reverse("clinic_audit_log", args=[clinic.pk])).content.decode()
    headers = re.findall(r'<th scope="col">([^<]+)</th>', page)
    assert headers == CSV_COLUMNS
    cells = re.findall(r'<td data-label="[^"]+">([^<]*)</td>', page)
    assert cells[1:5] == first_row[1:5] == ["Member invited", "joy", "admin", "192.0.2.7"]
    assert "Security events in " in page
    settings_page = admin_client.get(reverse("clinic_settings", args=[clinic.pk])).content.decode()
    assert f'href="{reverse("clinic_audit_log", args=[clinic.pk])}">Security events</a>' in settings_page
