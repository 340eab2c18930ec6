"""Every 2FA event is recorded, and the clinic's Audit Log page shows them."""

import re
from datetime import timedelta

import pytest
from django.test import Client  # noqa: F401
from django.urls import reverse
from django.utils import timezone

from clinic_auth.twofactor import devices
from clinic_auth.twofactor.models import AuditEvent
from tests.conftest import Browser, next_code, setup_device, totp_for
from users.models import User

Action = AuditEvent.Action
STAFF_IP = "198.51.100.7"
ADMIN_IP = "2001:db8::42"


@pytest.fixture
def staff_client():
    return Browser(REMOTE_ADDR=STAFF_IP)


@pytest.fixture
def admin_client(clinic_admin, enrol):
    """A verified clinic admin (enrolled, so turning the flag on keeps them in)."""
    c = Browser(REMOTE_ADDR=ADMIN_IP)
    enrol(clinic_admin, http_client=c)
    return c


def only_event(action, **filters) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action, **filters))
    assert len(events) == 1, [str(e) for e in AuditEvent.objects.all()]
    return events[0]


def assert_recorded(event: AuditEvent, *, actor, target, clinic, ip):
    assert (event.actor, event.target, event.clinic, event.ip_address) == (actor, target, clinic, ip)
    assert event.actor_username == actor.username
    assert event.target_username == (target.username if target else "")
    assert abs(timezone.now() - event.created_at) < timedelta(minutes=1)


def rows(html: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    if not body:
        return []
    return [
        [re.sub(r"\s+", " ", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


# --- each event, with who, whom, clinic, when and the address ---------------


@pytest.mark.django_db
def test_device_confirmed(clinic, staff, staff_client, enrol):
    enrol(staff, http_client=staff_client)
    assert_recorded(only_event(Action.DEVICE_CONFIRMED), actor=staff, target=staff, clinic=clinic, ip=STAFF_IP)


@pytest.mark.django_db
def test_disabled_by_self(clinic, staff, staff_client, enrol):
    device, _ = enrol(staff, http_client=staff_client)
    response = staff_client.post(reverse("two_factor_disable_own"), {"code": next_code(device)})
    assert response.status_code == 302
    assert not devices.is_enrolled(staff)
    assert_recorded(only_event(Action.DISABLED_BY_SELF), actor=staff, target=staff, clinic=clinic, ip=STAFF_IP)


@pytest.mark.django_db
def test_disabled_by_admin(clinic, staff, staff_client, clinic_admin, admin_client, enrol):
    enrol(staff, http_client=staff_client)
    response = admin_client.post(reverse("user_disable_2fa", args=[staff.pk]))
    assert response.status_code == 302
    assert not devices.is_enrolled(staff)
    assert_recorded(only_event(Action.DISABLED_BY_ADMIN), actor=clinic_admin, target=staff, clinic=clinic, ip=ADMIN_IP)


@pytest.mark.django_db
def test_recovery_codes_regenerated(clinic, staff, staff_client, enrol):
    enrol(staff, http_client=staff_client)
    response = staff_client.post(reverse("two_factor_recovery_codes"))
    assert response.status_code == 302
    event = only_event(Action.RECOVERY_CODES_REGENERATED)
    assert_recorded(event, actor=staff, target=staff, clinic=clinic, ip=STAFF_IP)


@pytest.mark.django_db
def test_mandatory_flag_turned_on_and_off(clinic, clinic_admin, admin_client):
    url = reverse("clinic_edit", args=[clinic.pk])
    admin_client.post(url, {"name": clinic.name, "mandatory_2fa": "on"})
    assert_recorded(only_event(Action.MANDATORY_ON), actor=clinic_admin, target=None, clinic=clinic, ip=ADMIN_IP)
    admin_client.post(url, {"name": clinic.name})
    assert_recorded(only_event(Action.MANDATORY_OFF), actor=clinic_admin, target=None, clinic=clinic, ip=ADMIN_IP)
    # Saving other fields without touching the flag records nothing.
    admin_client.post(url, {"name": clinic.name, "phone": "555 0199"})
    assert AuditEvent.objects.filter(action__in=[Action.MANDATORY_ON, Action.MANDATORY_OFF]).count() == 2


@pytest.mark.django_db
def test_failed_codes_past_the_throttle(clinic, staff, staff_client, enrol, settings):
    settings.CLINICAUTH_CODE_LOCKOUT_FAILURES = 3
    device, _ = enrol(staff, http_client=staff_client)
    staff_client.logout()
    staff_client.post(reverse("login"), {"username": staff.username, "password": "correct horse battery staple"})
    wrong = "000000" if totp_for(device) != "000000" else "111111"
    for _ in range(2):
        staff_client.post(reverse("two_factor_challenge"), {"code": wrong})
    assert not AuditEvent.objects.filter(action=Action.CODE_THROTTLED).exists()
    staff_client.post(reverse("two_factor_challenge"), {"code": wrong})
    event = only_event(Action.CODE_THROTTLED)
    assert_recorded(event, actor=staff, target=staff, clinic=clinic, ip=STAFF_IP)
    assert event.detail == "3 consecutive failed codes"


@pytest.mark.django_db
def test_failed_codes_past_the_throttle_at_setup(clinic, staff, staff_client, settings):
    settings.CLINICAUTH_CODE_LOCKOUT_FAILURES = 3
    staff_client.force_login(staff)
    staff_client.get(reverse("two_factor_setup"))
    device = setup_device(staff_client)
    wrong = next(c for c in ("000000", "111111", "222222") if c not in {totp_for(device, offset_steps=s) for s in (-1, 0, 1)})
    for _ in range(2):
        staff_client.post(reverse("two_factor_setup"), {"code": wrong})
    assert not AuditEvent.objects.filter(action=Action.CODE_THROTTLED).exists()
    staff_client.post(reverse("two_factor_setup"), {"code": wrong})
    event = only_event(Action.CODE_THROTTLED)
    assert_recorded(event, actor=staff, target=staff, clinic=clinic, ip=STAFF_IP)
    # Later refusals while locked are not recorded again.
    staff_client.post(reverse("two_factor_setup"), {"code": wrong})
    assert AuditEvent.objects.filter(action=Action.CODE_THROTTLED).count() == 1


@pytest.mark.django_db
def test_recovery_code_used(clinic, staff, staff_client, enrol):
    _, codes = enrol(staff, http_client=staff_client)
    staff_client.logout()
    staff_client.post(reverse("login"), {"username": staff.username, "password": "correct horse battery staple"})
    response = staff_client.post(reverse("two_factor_challenge"), {"code": codes[0], "method": "recovery"})
    assert response.status_code == 302
    assert_recorded(only_event(Action.RECOVERY_CODE_USED), actor=staff, target=staff, clinic=clinic, ip=STAFF_IP)


# --- the Audit Log page ------------------------------------------------------


@pytest.mark.django_db
def test_audit_log_lists_the_clinics_events_newest_first(clinic, clinic_admin, admin_client, staff, staff_client, enrol):
    enrol(staff, http_client=staff_client)
    staff_client.post(reverse("two_factor_recovery_codes"))
    admin_client.post(reverse("clinic_edit", args=[clinic.pk]), {"name": clinic.name, "mandatory_2fa": "on"})

    response = admin_client.get(reverse("clinic_audit_log", args=[clinic.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Audit Log</h1>" in html
    table = rows(html)
    assert [row[1:5] for row in table] == [  # event, member, actor, address: the CSV's order
        ["Mandatory 2FA turned on", "—", "admin", ADMIN_IP],
        ["Recovery codes regenerated", "staff", "staff", STAFF_IP],
        ["2FA enabled", "staff", "staff", STAFF_IP],
        ["2FA enabled", "admin", "admin", ADMIN_IP],
    ]
    assert all(re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d UTC", row[0]) for row in table)


@pytest.mark.django_db
def test_audit_log_is_newest_first_by_time_not_by_insertion(clinic, clinic_admin, admin_client):
    now = timezone.now()
    AuditEvent.objects.all().delete()
    for minutes, detail in [(5, "middle"), (1, "newest"), (30, "oldest")]:
        AuditEvent.objects.create(action=Action.MANDATORY_ON, clinic=clinic, created_at=now - timedelta(minutes=minutes), detail=detail)
    html = admin_client.get(reverse("clinic_audit_log", args=[clinic.pk])).content.decode()
    assert [row[5] for row in rows(html)] == ["newest", "middle", "oldest"]


@pytest.mark.django_db
def test_audit_log_is_paginated(clinic, clinic_admin, admin_client):
    AuditEvent.objects.all().delete()
    start = timezone.now() - timedelta(days=1)
    AuditEvent.objects.bulk_create(
        AuditEvent(action=Action.MANDATORY_ON, clinic=clinic, created_at=start + timedelta(minutes=n), detail=f"event {n}")
        for n in range(57)
    )
    url = reverse("clinic_audit_log", args=[clinic.pk])
    first = admin_client.get(url).content.decode()
    assert [row[5] for row in rows(first)] == [f"event {n}" for n in range(56, 6, -1)]
    assert "Page 1 of 2" in first and 'href="?page=2">Older</a>' in first and "Newer" not in first
    second = admin_client.get(url, {"page": 2}).content.decode()
    assert [row[5] for row in rows(second)] == [f"event {n}" for n in range(6, -1, -1)]
    assert "Page 2 of 2" in second and 'href="?page=1">Newer</a>' in second and "Older" not in second
    # Nonsense page numbers fall back to a real page instead of an error.
    assert admin_client.get(url, {"page": "999"}).status_code == 200
    assert admin_client.get(url, {"page": "x"}).status_code == 200


@pytest.mark.django_db
def test_audit_log_shows_only_this_clinics_events(clinic, clinic_admin, admin_client, clinic_factory, user_factory, enrol):
    other = clinic_factory(name="Other Clinic")
    outsider = user_factory(clinic=other, username="outsider")
    enrol(outsider, http_client=Client())
    html = admin_client.get(reverse("clinic_audit_log", args=[clinic.pk])).content.decode()
    assert "outsider" not in html
    assert len(rows(html)) == 1  # the admin's own enrolment
    assert AuditEvent.objects.filter(clinic=other).count() == 1


@pytest.mark.django_db
def test_audit_log_is_for_the_clinics_admins_only(client, clinic, staff, clinic_factory, user_factory):
    url = reverse("clinic_audit_log", args=[clinic.pk])
    client.force_login(staff)
    assert client.get(url).status_code == 403
    assert "Audit Log" not in client.get(reverse("home")).content.decode()
    client.force_login(user_factory(clinic=clinic_factory(), role=User.Role.CLINIC_ADMIN))
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_audit_log_is_read_only(clinic, clinic_admin, admin_client):
    url = reverse("clinic_audit_log", args=[clinic.pk])
    count = AuditEvent.objects.count()
    html = admin_client.get(url).content.decode()
    assert 'method="post"' not in re.search(r"<main.*</main>", html, re.S).group(0)
    assert admin_client.post(url).status_code == 405
    assert admin_client.delete(url).status_code == 405
    assert AuditEvent.objects.count() == count


@pytest.mark.django_db
def test_the_audit_trail_holds_no_secret(clinic, clinic_admin, admin_client, staff, staff_client, enrol, settings):
    settings.CLINICAUTH_CODE_LOCKOUT_FAILURES = 2
    device, first_codes = enrol(staff, http_client=staff_client)
    secrets = {device.manual_entry_key.replace(" ", ""), device.encrypted_key, totp_for(device)}
    response = staff_client.post(reverse("two_factor_recovery_codes"), follow=True)
    new_codes = response.context["codes"]
    staff_client.logout()
    staff_client.post(reverse("login"), {"username": staff.username, "password": "correct horse battery staple"})
    staff_client.post(reverse("two_factor_challenge"), {"code": "000001"})
    staff_client.post(reverse("two_factor_challenge"), {"code": "000002"})
    staff_client.post(reverse("two_factor_challenge"), {"code": new_codes[0], "method": "recovery"})
    admin_client.post(reverse("clinic_edit", args=[clinic.pk]), {"name": clinic.name, "mandatory_2fa": "on"})
    admin_client.post(reverse("user_disable_2fa", args=[staff.pk]))
    secrets |= {code for code in first_codes + new_codes} | {code.replace("-", "") for code in first_codes + new_codes}
    secrets |= {"000001", "000002", staff.password, clinic_admin.password}

    html = admin_client.get(reverse("clinic_audit_log", args=[clinic.pk])).content.decode()
    table = rows(html)
    assert len(table) >= 7
    for secret in secrets:
        assert secret not in html
    text_fields = ("action", "actor_username", "target_username", "ip_address", "detail")
    stored = " ".join(str(value) for row in AuditEvent.objects.values_list(*text_fields) for value in row)
    for secret in secrets:
        assert secret not in stored
