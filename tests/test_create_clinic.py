"""A real clinic's first steps without the shell: `manage.py create_clinic` and the Django admin's Add
clinic page create the clinic and its first clinic admin, whose e-mailed link leads into sign-in."""

import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor.models import AuditEvent
from clinics.models import Clinic
from users.models import Invitation, User

ROOT = Path(__file__).resolve().parent.parent
NEW_PASSWORD = "plum orchard lantern 42"
LINK = re.compile(r"http://testserver(/accounts/invitation/[^/\s]+/)")


def create_clinic(*args: str, capture=None) -> str:
    out = StringIO()
    if capture is None:
        call_command("create_clinic", *args, stdout=out)
    else:
        with capture(execute=True):
            call_command("create_clinic", *args, stdout=out)
    return out.getvalue()


def counts():
    return (
        Clinic.objects.count(),
        User.objects.count(),
        Invitation.objects.count(),
        AuditEvent.objects.count(),
    )


def test_creates_the_clinic_and_its_admin_and_prints_the_link_that_is_also_e_mailed(
    db, django_capture_on_commit_callbacks
):
    out = create_clinic(
        "Riverside Physio",
        "--admin-email",
        "Owner@Riverside.example",
        "--time-zone",
        "Europe/Paris",
        capture=django_capture_on_commit_callbacks,
    )
    clinic = Clinic.objects.get(name="Riverside Physio")
    assert clinic.time_zone == "Europe/Paris" and not clinic.mandatory_2fa
    admin = User.objects.get(clinic=clinic)
    assert (
        admin.role == User.Role.CLINIC_ADMIN
        and admin.is_active
        and not admin.has_usable_password()
    )
    assert (
        admin.email == "Owner@riverside.example"
        and admin.username == "Owner@riverside.example"
    )
    (printed,) = LINK.findall(out)
    (message,) = mail.outbox
    assert message.to == [admin.email] and LINK.search(message.body).group(1) == printed
    assert (
        "Riverside Physio has been set up" in message.body
        and "clinic admin" in message.body
    )
    invitation = Invitation.objects.get(user=admin)
    assert invitation.invited_by is None and invitation.accepted_at is None
    assert (
        AuditEvent.objects.filter(
            action=AuditEvent.Action.INVITED, target=admin, actor=None
        ).count()
        == 1
    )


def test_the_link_sets_a_password_and_under_mandatory_2fa_leads_to_set_up(
    db, django_capture_on_commit_callbacks
):
    out = create_clinic(
        "Riverside Physio",
        "--admin-email",
        "owner@riverside.example",
        "--admin-username",
        "owner",
        capture=django_capture_on_commit_callbacks,
    )
    (path,) = LINK.findall(out)
    Clinic.objects.filter(name="Riverside Physio").update(mandatory_2fa=True)
    browser = Client()
    assert browser.get(path).status_code == 200
    response = browser.post(
        path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    followed = browser.get(response.url)
    assert followed.status_code == 302 and followed.url.startswith(
        reverse("two_factor_setup")
    )
    # The password works for a fresh sign-in too, and the link does not work twice.
    assert User.objects.get(username="owner").check_password(NEW_PASSWORD)
    again = Client().post(
        path,
        {
            "new_password1": "another long phrase 7",
            "new_password2": "another long phrase 7",
        },
    )
    assert again.status_code != 302
    assert User.objects.get(username="owner").check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    "args, problem",
    [
        (
            ["riverside physio", "--admin-email", "new@riverside.example"],
            "NAME: A clinic named Riverside Physio already exists.",
        ),
        (
            ["Lakeside", "--admin-email", "first@riverside.example"],
            "--admin-email: An account with this email address already exists.",
        ),
        (
            [
                "Lakeside",
                "--admin-email",
                "new@lakeside.example",
                "--time-zone",
                "Mars/Olympus",
            ],
            "--time-zone: Unknown time zone: Mars/Olympus.",
        ),
        (
            ["Lakeside", "--admin-email", "not-an-address"],
            "--admin-email: Enter a valid email address.",
        ),
        (
            [
                "Lakeside",
                "--admin-email",
                "new@lakeside.example",
                "--admin-username",
                "FIRST",
            ],
            "--admin-username: This username is not available.",
        ),
        (
            [
                "Lakeside",
                "--admin-email",
                "new@lakeside.example",
                "--admin-username",
                "has space",
            ],
            "--admin-username: Enter a valid username.",
        ),
        (
            ["", "--admin-email", "new@lakeside.example"],
            "NAME: This field is required.",
        ),
    ],
)
def test_bad_input_is_one_clear_error_and_nothing_is_created(db, args, problem):
    create_clinic(
        "Riverside Physio",
        "--admin-email",
        "first@riverside.example",
        "--admin-username",
        "first",
    )
    before = counts()
    with pytest.raises(CommandError) as refused:
        create_clinic(*args)
    assert str(refused.value).startswith("Nothing was created.")
    assert problem in str(refused.value)
    assert counts() == before


def test_a_failure_part_way_leaves_nothing_half_created(db):
    with mock.patch(
        "users.membership.queue_email", side_effect=RuntimeError("mail broke")
    ):
        with pytest.raises(RuntimeError):
            create_clinic(
                "Riverside Physio", "--admin-email", "owner@riverside.example"
            )
    assert counts() == (0, 0, 0, 0)


def test_from_the_shell_a_refusal_exits_with_status_1_on_stderr(tmp_path):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "1",
        "EMAIL_QUEUE": "off",
        "PATH": "/usr/bin:/bin",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    made = subprocess.run(
        [*manage, "create_clinic", "Riverside Physio", "--admin-email", "o@r.example"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0 and "/accounts/invitation/" in made.stdout, made.stderr
    refused = subprocess.run(
        [
            *manage,
            "create_clinic",
            "Riverside Physio",
            "--admin-email",
            "o@r.example",
            "--time-zone",
            "Nowhere",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and refused.stdout == ""
    assert (
        "Nothing was created." in refused.stderr
        and "Unknown time zone: Nowhere" in refused.stderr
    )


# --- the Django admin's Add clinic page -------------------------------------------------


@pytest.fixture
def operator(user_factory, enrol):
    user = user_factory(username="operator", is_staff=True, is_superuser=True)
    browser = Client()
    enrol(user, http_client=browser)
    return user, browser


def test_the_admin_add_clinic_page_creates_the_clinic_and_invites_its_first_admin(
    operator, django_capture_on_commit_callbacks
):
    user, browser = operator
    page = browser.get(reverse("admin:clinics_clinic_add"))
    assert page.status_code == 200
    assert "First clinic admin" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            reverse("admin:clinics_clinic_add"),
            {
                "name": "Riverside Physio",
                "time_zone": "Europe/Paris",
                "admin_email": "owner@riverside.example",
                "admin_first_name": "Rita",
                "admin_last_name": "Owner",
            },
            follow=True,
        )
    assert response.status_code == 200
    clinic = Clinic.objects.get(name="Riverside Physio")
    admin = User.objects.get(clinic=clinic)
    assert (
        admin.role == User.Role.CLINIC_ADMIN and admin.get_full_name() == "Rita Owner"
    )
    (message,) = mail.outbox
    link = LINK.search(message.body).group(1)
    shown = response.content.decode()
    assert (
        "First clinic admin owner@riverside.example invited by e-mail" in shown
        and link in shown
    )
    assert "has invited you to Riverside Physio" in message.body
    assert Invitation.objects.get(user=admin).invited_by == user


def test_the_admin_add_clinic_page_refuses_bad_input_without_creating_anything(
    operator,
):
    _, browser = operator
    before = counts()
    response = browser.post(
        reverse("admin:clinics_clinic_add"),
        {"name": "Riverside Physio", "time_zone": "Mars/Olympus", "admin_email": "x"},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert (
        "Unknown time zone: Mars/Olympus" in str(errors["time_zone"])
        and "admin_email" in errors
    )
    assert counts() == before


def test_editing_a_clinic_in_the_admin_is_the_plain_clinic_form(operator, clinic):
    _, browser = operator
    page = browser.get(
        reverse("admin:clinics_clinic_change", args=[clinic.pk])
    ).content.decode()
    assert "First clinic admin" not in page and 'name="mandatory_2fa"' in page
