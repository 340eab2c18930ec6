"""Membership under real parallel HTTP (gunicorn, 4 workers, PostgreSQL).

Deactivating a member ends every one of their sessions at once, whichever worker
serves them next; and two admins deactivating or demoting each other at the same
instant can never leave the clinic without an active clinic admin.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.concurrency.harness import WORKERS, Browser
from tests.concurrency.test_parallel_codes import in_parallel, report

pytestmark = pytest.mark.concurrency

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def make_clinic(deployment, prefix: str) -> dict:
    """A clinic without Mandatory 2FA: two admins and one staff member; returns their ids by username."""
    from tests.conftest import PASSWORD

    return deployment.shell(
        f"""
        from clinics.models import Clinic
        clinic = Clinic.objects.create(name={prefix!r} + " Clinic")
        ids = {{}}
        for name, role in (("{prefix}-a", "admin"), ("{prefix}-b", "admin"), ("{prefix}-staff", "staff")):
            user = User(username=name, clinic=clinic, role=role, email=name + "@example.com", first_name=name)
            user.set_password({PASSWORD!r})
            user.save()
            ids[name] = user.pk
        print(json.dumps(ids))
        """
    )


def signed_in(deployment, username: str) -> Browser:
    browser = deployment.logged_in(username)
    assert browser.request("/home/").status == 200  # no 2FA in this clinic: straight in
    return browser


def test_deactivation_ends_every_session_across_workers(deployment):
    ids = make_clinic(deployment, "leavers")
    sessions = 12
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        browsers = list(pool.map(lambda _: signed_in(deployment, "leavers-staff"), range(sessions)))
    # Every session works, from parallel requests that several workers answer.
    before, _ = in_parallel([lambda b=b: b.request("/home/") for b in browsers])
    assert [r.status for r in before] == [200] * sessions

    admin = signed_in(deployment, "leavers-a")
    token = CSRF_RE.search(admin.request(f"/users/{ids['leavers-staff']}/deactivate/").text).group(1)
    response = admin.post_form(f"/users/{ids['leavers-staff']}/deactivate/", {}, csrf=token)
    assert response.status == 302, response.status

    after, _ = in_parallel([lambda b=b: b.request("/home/") for b in browsers for _ in range(2)])
    ended = sum(r.status == 302 and r.location.startswith("/accounts/login/") for r in after)
    again = Browser(deployment.base).log_in("leavers-staff")
    report("deactivation", sessions=sessions, requests_after=len(after), sent_to_login=ended, relogin_status=again.status)
    assert ended == len(after)
    assert again.status == 200 and "The username or password is incorrect." in again.text


@pytest.mark.parametrize("rounds", [4])
def test_two_admins_removing_each_other_at_once_leave_one(deployment, rounds):
    ids = make_clinic(deployment, "pair")
    a, b = ids["pair-a"], ids["pair-b"]
    outcomes = []
    for round_number in range(rounds):
        deployment.shell(
            f"""
            User.objects.filter(pk__in=[{a}, {b}]).update(is_active=True, role="admin")
            print(json.dumps(0))
            """
        )
        browser_a, browser_b = signed_in(deployment, "pair-a"), signed_in(deployment, "pair-b")
        # Alternate the kind of removal: deactivate / demote, in each combination.
        kinds = [("deactivate", "deactivate"), ("role", "role"), ("deactivate", "role"), ("role", "deactivate")][
            round_number % 4
        ]

        def removal(browser, target, kind):
            path = f"/users/{target}/deactivate/" if kind == "deactivate" else f"/users/{target}/role/"
            token = CSRF_RE.search(browser.request(f"/users/{target}/").text).group(1)
            fields = {} if kind == "deactivate" else {"role": "staff"}
            return lambda: browser.post_form(path, fields, csrf=token)

        responses, _ = in_parallel([removal(browser_a, b, kinds[0]), removal(browser_b, a, kinds[1])])
        assert all(r.status in (302, 403) for r in responses), [r.status for r in responses]
        active_admins = deployment.shell(
            f"""
            print(json.dumps(User.objects.filter(pk__in=[{a}, {b}], is_active=True, role="admin").count()))
            """
        )
        outcomes.append(active_admins)
    report("last admin", rounds=rounds, active_admins_after_each_round=outcomes)
    assert outcomes == [1] * rounds
