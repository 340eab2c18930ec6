"""One admin-issued one-time sign-in code, submitted from several sessions at
once across gunicorn's 4 worker processes, signs in exactly one of them."""

from __future__ import annotations

import pytest

from tests.concurrency.test_parallel_codes import CHALLENGE, in_parallel, report, sessions_at_challenge

pytestmark = pytest.mark.concurrency

SETUP = "/accounts/two-factor/setup/"


def issue_code(deployment, username: str) -> str:
    return deployment.shell(
        f"""
        from clinic_auth.twofactor.signin_code import services as signin_code_services
        code, _ = signin_code_services.signin_code_issue(user=User.objects.get(username={username!r}), actor=None)
        print(json.dumps(code))
        """
    )


def test_one_signin_code_from_five_sessions_at_once_signs_in_exactly_one(deployment):
    username = "lostphone"
    code = issue_code(deployment, username)
    sessions = sessions_at_challenge(deployment, username, 5)

    responses, seconds = in_parallel(
        [lambda b=browser, t=token: b.post_form(CHALLENGE, {"code": code, "next": "/home/"}, csrf=t) for browser, token in sessions]
    )

    winners = [r for r in responses if r.status == 302 and r.location.endswith(SETUP)]
    refused = [r for r in responses if r.status == 200 and "Two-Factor Authentication" in r.text]
    uses = deployment.shell(
        """
        from clinic_auth.twofactor.models import AuditEvent
        print(json.dumps(AuditEvent.objects.filter(action="signin_code_used", target_username="lostphone").count()))
        """
    )
    report("5 parallel submissions of one one-time sign-in code", accepted=len(winners), refused=len(refused),
           audited_uses=uses, window_seconds=round(seconds, 2))
    assert len(winners) == 1
    assert len(refused) == 4
    assert uses == 1
    # The winner really is signed in (and on its way to set up a new app); a loser is still at the challenge.
    winner = sessions[responses.index(winners[0])][0]
    assert winner.request(SETUP).status == 200
    loser = sessions[responses.index(refused[0])][0]
    assert loser.request("/home/").location.startswith(CHALLENGE)
