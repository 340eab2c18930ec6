import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command

from clinic_auth.twofactor import devices
from clinics.models import Clinic
from tests.conftest import totp_for
from users.models import User

pytestmark = pytest.mark.django_db


def bench_users():
    return User.objects.filter(clinic__name__startswith="Bench Clinic")


def test_seeds_clinics_with_half_enrolled_users_and_one_admin_each():
    call_command("seed_bench", clinics=2, staff=10, password="bench-password-1")

    assert Clinic.objects.filter(name__startswith="Bench Clinic").count() == 2
    assert bench_users().count() == 20
    for clinic in Clinic.objects.filter(name__startswith="Bench Clinic"):
        members = list(User.objects.filter(clinic=clinic))
        assert [m.username for m in members if m.role == User.Role.CLINIC_ADMIN] == [
            f"bench-c{clinic.name[-3:]}-admin"
        ]
        assert sum(devices.is_enrolled(m) for m in members) == 5
        assert all(m.twofa_enrolled == devices.is_enrolled(m) for m in members)  # the Users list's flag


def test_seeded_accounts_log_in_with_the_password_and_a_code(client):
    call_command("seed_bench", clinics=1, staff=4, password="bench-password-1")
    user = User.objects.get(username="bench-c001-u000002")
    assert check_password("bench-password-1", user.password)
    device = devices.confirmed_totp_device(user)

    response = client.post("/accounts/login/", {"username": user.username, "password": "bench-password-1"})
    assert response.status_code == 302
    response = client.post("/accounts/two-factor/", {"code": totp_for(device)})
    assert response.status_code == 302 and response.url == "/home/"
    assert client.get("/home/").status_code == 200


def test_running_again_adds_missing_clinics_and_leaves_existing_ones_alone():
    call_command("seed_bench", clinics=1, staff=6)
    first_ids = set(bench_users().values_list("pk", flat=True))

    call_command("seed_bench", clinics=3, staff=6)

    assert bench_users().count() == 18
    assert first_ids <= set(bench_users().values_list("pk", flat=True))
    assert User.objects.filter(clinic__name="Bench Clinic 001").count() == 6


def test_delete_removes_only_bench_clinics(user_factory):
    other = user_factory(username="real-person")
    call_command("seed_bench", clinics=1, staff=4)

    call_command("seed_bench", clinics=1, staff=2, delete=True)

    assert bench_users().count() == 2
    assert User.objects.filter(pk=other.pk).exists()
