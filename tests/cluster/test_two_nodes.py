"""Every rule holds across two app nodes behind HAProxy: one sign-in spread over both nodes, codes
and throttles counted once, a change on one node seen by the other at its next request.

No sticky sessions and no cache: what one node writes to PostgreSQL is what the other reads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.cluster.harness import CHALLENGE, LOGIN, NODES, code_for, other

pytestmark = pytest.mark.cluster

HOME = "/home/"
SETUP = "/accounts/two-factor/setup/"
LOCKED = "Code entry is locked for"
WRONG_PASSWORD = "The username or password is incorrect."
THROTTLED_PASSWORD = "Too many failed sign-in attempts"


def at_once(jobs):
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        return job()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


def signed_in(cluster, username: str, *, password_node: str = "node1"):
    """A browser through the password on one node and the code on the other. A second sign-in of the
    same person within 30 s takes the next step's code, as the phone would show it: the current one
    was used."""
    browser = cluster.browser()
    assert browser.password(username, node=password_node).status == 302
    for offset_steps in (0, 1):
        response = browser.code(code_for(cluster.keys[username], offset_steps=offset_steps), node=other(password_node))
        if response.status == 302:
            assert response.location == HOME, response.location
            return browser
    raise AssertionError((response.status, response.text[:300]))


def test_round_robin_without_sticky_sessions_alternates_the_nodes(cluster):
    browser = cluster.browser()
    served = [browser.request("/healthz").served_by for _ in range(6)]
    assert set(served) == set(NODES) and all(a != b for a, b in zip(served, served[1:])), served


def test_password_on_one_node_code_on_the_other_pages_on_both_is_one_sign_in(cluster):
    browser = cluster.browser()
    step1 = browser.password("alice", node="node1")
    assert (step1.status, step1.served_by) == (302, "node1")
    held = browser.request(HOME, node="node2")
    assert held.status == 302 and held.location.startswith(CHALLENGE) and held.served_by == "node2"
    step2 = browser.code(code_for(cluster.keys["alice"]), node="node2")
    assert (step2.status, step2.location, step2.served_by) == (302, HOME, "node2")
    pages = [browser.request(HOME, node=node) for node in NODES * 3]
    assert [(page.status, page.served_by) for page in pages] == [(200, node) for node in NODES * 3]
    assert all("Alice" in page.text for page in pages)
    sessions = cluster.shell(
        f"""
        from users.models import UserSession
        print(json.dumps(UserSession.objects.filter(user_id={cluster.ids['alice']}, ended_at=None).count()))
        """
    )
    assert sessions == 1


def test_the_same_code_on_both_nodes_at_once_is_accepted_once_ten_rounds(cluster):
    outcomes = []
    for n in range(10):
        username = f"twin{n}"
        browsers = []
        for node in NODES:
            browser = cluster.browser()
            assert browser.password(username, node=node).status == 302
            token = browser.request(CHALLENGE, node=node).csrf
            browsers.append((browser, node, token))
        code = code_for(cluster.keys[username])
        responses = at_once(
            [
                lambda b=b, node=node, t=t: b.request(CHALLENGE, {"csrfmiddlewaretoken": t, "code": code, "next": HOME}, node=node)
                for b, node, t in browsers
            ]
        )
        assert {r.served_by for r in responses} == set(NODES)
        outcomes.append(sorted(r.status for r in responses))
    assert outcomes == [[200, 302]] * 10, outcomes


def wrong_codes_until_locked(cluster, username: str, nodes: list[str]) -> int:
    """Wrong codes, one node after another from `nodes`; returns how many until the lock answered."""
    browser = cluster.browser()
    assert browser.password(username).status == 302
    right = code_for(cluster.keys[username])
    wrong = "000000" if right != "000000" else "111111"
    for attempt in range(1, 30):
        response = browser.code(wrong, node=nodes[attempt % len(nodes)])
        assert response.status == 200
        if LOCKED in response.text:
            # Locked means locked: the right code is refused too, on either node.
            for node in NODES:
                again = browser.code(right, node=node)
                assert again.status == 200 and LOCKED in again.text
            return attempt
    raise AssertionError("never locked")


def test_wrong_codes_spread_over_both_nodes_lock_after_the_same_count_as_on_one(cluster):
    on_one = wrong_codes_until_locked(cluster, "locker-one", ["node1"])
    on_both = wrong_codes_until_locked(cluster, "locker-two", list(NODES))
    assert on_both == on_one


def test_the_password_throttle_counts_across_nodes(cluster):
    browser = cluster.browser()
    answers = [browser.password("pwtarget", node=NODES[n % 2], password="not the password 1") for n in range(12)]
    assert [a.served_by for a in answers[:2]] == list(NODES)
    wrong = [a for a in answers if WRONG_PASSWORD in a.text]
    throttled = [a for a in answers if THROTTLED_PASSWORD in a.text]
    assert len(wrong) == 10 and len(throttled) == 2, [(a.status, a.served_by) for a in answers]
    # The right password now is refused on both nodes: the account's count is one, wherever it was kept.
    for node in NODES:
        right = browser.password("pwtarget", node=node)
        assert right.status == 200 and THROTTLED_PASSWORD in right.text


def test_a_one_time_sign_in_code_is_single_use_across_nodes(cluster):
    code = cluster.shell(
        """
        from clinic_auth.twofactor.signin_code import services
        code, _ = services.signin_code_issue(user=User.objects.get(username="lostphone"), actor=None)
        print(json.dumps(code))
        """
    )
    browsers = []
    for node in NODES:
        browser = cluster.browser()
        assert browser.password("lostphone", node=node).status == 302
        browsers.append((browser, node, browser.request(CHALLENGE, node=node).csrf))
    responses = at_once(
        [
            lambda b=b, node=node, t=t: b.request(CHALLENGE, {"csrfmiddlewaretoken": t, "code": code, "next": HOME}, node=node)
            for b, node, t in browsers
        ]
    )
    winners = [i for i, r in enumerate(responses) if r.status == 302 and r.location.startswith(SETUP)]
    assert len(winners) == 1, [(r.status, r.location) for r in responses]
    # The other is refused (200, the challenge again) or, when the winner's sign-in ended the member's
    # other sessions while it ran, answered 400 "signed out meanwhile": either way not signed in.
    (loser,) = [b for i, (b, _, _) in enumerate(browsers) if i not in winners]
    assert responses[1 - winners[0]].status in (200, 400)
    assert loser.request(HOME).status == 302
    assert {r.served_by for r in responses} == set(NODES)


def test_deactivating_a_member_on_one_node_ends_their_requests_on_the_other_at_once(cluster):
    member = signed_in(cluster, "leaver")
    assert member.request(HOME, node="node2").status == 200
    admin = signed_in(cluster, "cadmin")
    path = f"/users/{cluster.ids['leaver']}/deactivate/"
    done = admin.post(path, {}, node="node1", csrf_from=f"/users/{cluster.ids['leaver']}/")
    assert done.status == 302, (done.status, done.text[:300])
    after = member.request(HOME, node="node2")
    assert after.status == 302 and after.location.startswith(LOGIN)


def test_sign_out_everywhere_on_one_node_ends_the_other_browsers_on_the_other_node(cluster):
    here = signed_in(cluster, "everywhere")
    elsewhere = signed_in(cluster, "everywhere", password_node="node2")
    assert elsewhere.request(HOME, node="node2").status == 200
    done = here.post("/profile/sessions/end/", {"session": "others"}, node="node1", csrf_from="/profile/")
    assert done.status == 302
    assert here.request(HOME, node="node2").status == 200  # the one that asked stays signed in
    ended = elsewhere.request(HOME, node="node2")
    assert ended.status == 302 and ended.location.startswith(LOGIN)


def test_mandatory_2fa_ticked_on_one_node_is_enforced_by_the_other_on_the_next_request(cluster):
    newcomer = cluster.browser()
    assert newcomer.password("newcomer", node="node2").status == 302
    assert newcomer.request(HOME, node="node2").status == 200  # Strict Clinic does not require it yet
    admin = signed_in(cluster, "cadmin")
    clinic = cluster.clinics["strict"]
    edit = f"/clinics/{clinic}/edit/"
    page = admin.request(edit, node="node1")
    assert page.status == 200
    saved = admin.request(
        edit,
        {"csrfmiddlewaretoken": page.csrf, "name": "Strict Clinic", "address": "", "phone": "", "mandatory_2fa": "on",
         "require_from": "now", "time_zone": "UTC"},
        node="node1",
    )
    assert saved.status == 302, (saved.status, saved.text[:500])
    held = newcomer.request(HOME, node="node2")
    assert held.status == 302 and held.location.startswith(SETUP)
