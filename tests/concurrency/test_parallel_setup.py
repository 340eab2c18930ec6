"""Two browsers setting up one account at the same instant; exactly one wins.

Each browser has its own secret (bound to its session). Both submit a valid
code from their own secret at once, against 4 gunicorn workers on PostgreSQL.
"""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from tests.concurrency.harness import CSRF_RE, MANUAL_KEY_RE
from tests.concurrency.test_parallel_codes import in_parallel, report
from tests.conftest import PASSWORD, totp_for

pytestmark = pytest.mark.concurrency

SETUP = "/accounts/two-factor/setup/"
CODES = "/accounts/two-factor/recovery-codes/"
ROUNDS = 5


def test_two_browsers_enrolling_one_account_at_once_exactly_one_wins(deployment):
    winners_total = 0
    for round_number in range(ROUNDS):
        username = f"setup-race-{round_number}"
        deployment.shell(
            f"""
            from clinics.models import Clinic
            user = User(username={username!r}, clinic=Clinic.objects.get(name="Concurrency Clinic"))
            user.set_password({PASSWORD!r})
            user.save()
            print(json.dumps(user.pk))
            """
        )
        browsers = []
        for _ in range(2):
            browser = deployment.logged_in(username)
            page = browser.request(SETUP)
            assert page.status == 200, (page.status, page.location)
            key = base64.b32decode(MANUAL_KEY_RE.search(page.text).group(1).replace(" ", ""))
            browsers.append((browser, CSRF_RE.search(page.text).group(1), key))
        assert browsers[0][2] != browsers[1][2], "each session must get its own secret"

        def submit(entry):
            browser, token, key = entry
            code = totp_for(SimpleNamespace(bin_key=key))
            return lambda: browser.post_form(SETUP, {"code": code}, csrf=token)

        results, _ = in_parallel([submit(entry) for entry in browsers])

        won = [i for i, r in enumerate(results) if (r.status, r.location) == (302, CODES)]
        lost = [i for i, r in enumerate(results) if i not in won]
        assert len(won) == 1, [(r.status, r.location) for r in results]
        loser = results[lost[0]]
        assert loser.status == 302 and loser.location.startswith((SETUP, "/accounts/two-factor/")), loser
        confirmed_keys = deployment.shell(
            f"""
            import base64
            from clinic_auth.twofactor.models import EncryptedTOTPDevice
            devices = EncryptedTOTPDevice.objects.filter(user__username={username!r})
            print(json.dumps([[base64.b32encode(d.bin_key).decode(), d.confirmed] for d in devices]))
            """
        )
        # Exactly one authenticator is left, confirmed, and it is the winner's secret.
        assert confirmed_keys == [[base64.b32encode(browsers[won[0]][2]).decode(), True]]
        # The loser is told to start again: its next page says another window finished set-up.
        follow = browsers[lost[0]][0].request(loser.location)
        if follow.status == 302:
            follow = browsers[lost[0]][0].request(follow.location)
        assert "another window" in follow.text
        winners_total += len(won)
    report("parallel set-up of one account", rounds=ROUNDS, winners=winners_total, losers=ROUNDS * 2 - winners_total)
