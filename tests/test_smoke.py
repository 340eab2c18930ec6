import pytest
from django.urls import reverse

from tests.conftest import totp_for


@pytest.mark.django_db
def test_full_flow(client, staff, enrol, login):
    device, codes = enrol(staff)
    assert len(codes) == 10
    client.logout()
    r = login(staff)
    assert r.status_code == 302
    r = client.get(reverse("home"))
    assert r.status_code == 302 and r.url.startswith(reverse("two_factor_challenge"))
    r = client.get(r.url)
    assert b"Two-Factor Authentication" in r.content
    r = client.post(reverse("two_factor_challenge"), {"code": totp_for(device, offset_steps=1)})
    assert r.status_code == 302, r.content.decode()
    r = client.get(reverse("home"))
    assert r.status_code == 200
    r = client.get(reverse("profile"))
    assert b"Enabled" in r.content
