"""The session adapter: the only code that reads or writes `request.session` for 2FA.

It holds the cached gate, the pending login, the set-up in progress and recovery codes waiting to
be shown once. Whether the session has passed the second factor is django-otp's own record, the
device's persistent id under DEVICE_ID_SESSION_KEY (django_otp.login writes it): the one source of
truth that `request.user.is_verified()` and `request.user.otp_device` answer from.
"""

from __future__ import annotations

import datetime
import secrets
import time
import zoneinfo

import django_otp
from django_otp import DEVICE_ID_SESSION_KEY
from django.conf import settings
from django.contrib.auth import SESSION_KEY, update_session_auth_hash
from django.http import HttpRequest
from django.utils import timezone

from . import crypto, devices, policy, services, signals
from .policy import Gate

STATE_KEY = "clinicauth_2fa_state"
PENDING_SINCE_KEY = "clinicauth_2fa_pending_since"
LOGIN_AT_KEY = "clinicauth_login_at"
SETUP_KEY = "clinicauth_2fa_setup"  # pk of the unconfirmed authenticator this session is setting up
SHOW_CODES_KEY = "clinicauth_2fa_show_codes"  # new recovery codes, encrypted, until shown once
LAST_SEEN_KEY = "clinicauth_last_seen"
GRACE_DISMISSED_KEY = "clinicauth_2fa_grace_dismissed"  # the grace banner, hidden for this session
REPLACING_KEY = "clinicauth_2fa_replacing"  # signed in with a one-time code: may set up a new app
# A busy user costs a session write at most once a minute.
LAST_SEEN_WRITE_INTERVAL = 60


def keep_alive(request: HttpRequest) -> tuple[int, str]:
    """Explicit activity (the idle warning's "Stay signed in"): note it now; then session_left."""
    request.session[LAST_SEEN_KEY] = int(time.time())
    return session_left(request)


def session_left(request: HttpRequest) -> tuple[int, str]:
    """Seconds until this session ends, as the server counts them, and which limit ends it first:
    "idle" (SESSION_IDLE_TIMEOUT after the last activity) or "absolute" (SESSION_ABSOLUTE_TIMEOUT
    after the sign-in, which no activity extends)."""
    now = int(time.time())
    idle_end = request.session.get(LAST_SEEN_KEY, now) + settings.SESSION_IDLE_TIMEOUT
    absolute_end = request.session.get(LOGIN_AT_KEY, now) + settings.SESSION_ABSOLUTE_TIMEOUT
    if absolute_end < idle_end:
        return max(0, absolute_end - now), "absolute"
    return max(0, idle_end - now), "idle"


def ended_elsewhere(request: HttpRequest) -> bool:
    """True once when this session's login was ended from elsewhere (an admin's reset, a
    password change); the session is then emptied so the login page can say why.

    Must run before request.user is first evaluated: Django flushes a session whose user no
    longer matches it, which removes the very key this looks for.
    """
    if request.session.get(SESSION_KEY) is None or request.user.is_authenticated:
        return False
    request.session.flush()
    return True


def timed_out_else_touch(request: HttpRequest, *, touch: bool = True) -> str | None:
    """Which limit ended the session, "idle" (no activity for SESSION_IDLE_TIMEOUT) or "absolute"
    (SESSION_ABSOLUTE_TIMEOUT since the sign-in); None while it lives, the activity then noted."""
    now = int(time.time())
    login_at = request.session.setdefault(LOGIN_AT_KEY, now)
    last_seen = request.session.get(LAST_SEEN_KEY, now)
    if now - login_at > settings.SESSION_ABSOLUTE_TIMEOUT:
        return "absolute"
    if now - last_seen > settings.SESSION_IDLE_TIMEOUT:
        return "idle"
    if touch and now - request.session.get(LAST_SEEN_KEY, 0) >= LAST_SEEN_WRITE_INTERVAL:
        request.session[LAST_SEEN_KEY] = now
    return None


def request_gate(request: HttpRequest) -> Gate:
    """The gate for this session, from the session cache while the user's stamp holds.

    The stamp on the user row changes whenever authenticators or the clinic
    policy change, so a verified user's request costs no query here.
    """
    user = request.user
    if not user.is_authenticated:
        return Gate.OPEN
    cached = request.session.get(STATE_KEY)
    if cached and cached.get("stamp") == policy.gate_stamp(user) and _still_valid(cached):
        return Gate(cached["gate"])
    enrolled = devices.is_enrolled(user)
    required, pending = policy.requirement(user) if not enrolled else (False, None)
    gate = policy.gate_for(enrolled=enrolled, verified=is_verified(request), required=required)
    _remember_gate(request, gate, pending=pending)
    return gate


def is_verified(request: HttpRequest) -> bool:
    """The session passed the second factor (django-otp's record of the device it passed with)."""
    return bool(request.session.get(DEVICE_ID_SESSION_KEY))


def verified_device_id(request: HttpRequest) -> str | None:
    """The persistent id of the device the session passed the second factor with (django-otp's)."""
    return request.session.get(DEVICE_ID_SESSION_KEY)


def _still_valid(cached: dict) -> bool:
    until = cached.get("until")
    return until is None or timezone.now().timestamp() < until


def _remember_gate(request: HttpRequest, gate: Gate, *, pending: policy.Enforcement | None = None) -> None:
    """Cache the gate under the user's stamp. During a clinic's grace period the entry also
    holds the moment the date begins ("until"), so the first request after it re-decides,
    and what the banner needs, so showing it costs no query."""
    state = {"stamp": policy.gate_stamp(request.user), "gate": str(gate)}
    if pending is not None:
        state["until"] = pending.starts_at().timestamp()
        state["grace"] = {"date": pending.starts_on.isoformat(), "tz": pending.time_zone}
    request.session[STATE_KEY] = state


def grace_banner(request: HttpRequest) -> dict | None:
    """The grace-period banner for this session (date, days left), from the cached gate: no query.

    Only an un-enrolled member of a clinic whose Mandatory 2FA date has not come
    has one, and not after dismissing it in this session.
    """
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return None
    grace = (request.session.get(STATE_KEY) or {}).get("grace")
    if not grace or request.session.get(GRACE_DISMISSED_KEY):
        return None
    starts_on = datetime.date.fromisoformat(grace["date"])
    today = timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(grace["tz"])).date()
    return {"date": starts_on, "days_left": max(0, (starts_on - today).days)}


def dismiss_grace_banner(request: HttpRequest) -> None:
    request.session[GRACE_DISMISSED_KEY] = True


def start_replacing_authenticator(request: HttpRequest) -> None:
    """The member signed in with an admin-issued code: this session may set up a new app
    next to the old one (which goes when the new one is confirmed)."""
    request.session[REPLACING_KEY] = True


def replacing_authenticator(request: HttpRequest) -> bool:
    return bool(request.session.get(REPLACING_KEY))


def done_replacing_authenticator(request: HttpRequest) -> None:
    request.session.pop(REPLACING_KEY, None)


def start_login(request: HttpRequest) -> None:
    """Called right after the password step: nothing from before carries over.

    Where no second factor applies, the password completes the sign-in.
    """
    for key in (DEVICE_ID_SESSION_KEY, STATE_KEY, SETUP_KEY, SHOW_CODES_KEY, REAUTH_AT_KEY, PENDING_ACTIONS_KEY, REPLACING_KEY):
        request.session.pop(key, None)
    request.session[PENDING_SINCE_KEY] = int(time.time())
    request.session[LOGIN_AT_KEY] = int(time.time())
    gate = request_gate(request)
    if gate in (Gate.OPEN, Gate.SETUP):
        note_reauth(request)  # for an account without 2FA, the password is the proof
    if gate == Gate.OPEN:
        services.user_record_sign_in(user=request.user)
        signals.sign_in_completed.send(sender=None, request=request, user=request.user)


def pending_login_expired(request: HttpRequest) -> bool:
    since = request.session.get(PENDING_SINCE_KEY)
    if since is None:
        return False
    return time.time() - since > settings.CLINICAUTH_PENDING_LOGIN_TIMEOUT


def mark_verified(request: HttpRequest, device, *, completes_sign_in: bool = True, sign_in_recorded: bool = False) -> None:
    """The session has passed the second factor: rotate its key and remember it.

    completes_sign_in is False when a session that was already signed in (no 2FA
    needed) sets up an authenticator: that is not a new sign-in for last_login.
    sign_in_recorded is True when the service that checked the factor has stamped
    last_login already, in its own transaction (a code method's verify).
    """
    request.session.cycle_key()
    request.session.pop(PENDING_SINCE_KEY, None)
    request.session.pop(SETUP_KEY, None)
    django_otp.login(request, device)
    _remember_gate(request, Gate.VERIFIED)
    note_reauth(request)
    if completes_sign_in and not sign_in_recorded:
        services.user_record_sign_in(user=request.user)
    if completes_sign_in:
        signals.sign_in_completed.send(sender=None, request=request, user=request.user)


def verified_with(request: HttpRequest, device) -> None:
    """The session stays verified, now with `device` (the one it passed with has been replaced)."""
    django_otp.login(request, device)


def keep_after_own_reset(request: HttpRequest) -> None:
    """The user turned their own 2FA off: this session carries on (every other one ended)."""
    user = request.user
    user.refresh_from_db(fields=["session_nonce", "twofa_stamp"])
    update_session_auth_hash(request, user)
    request.session.pop(DEVICE_ID_SESSION_KEY, None)
    request.session.pop(STATE_KEY, None)


def setup_device_id(request: HttpRequest) -> int | None:
    return request.session.get(SETUP_KEY)


def remember_setup_device(request: HttpRequest, device) -> None:
    if device is None:
        request.session.pop(SETUP_KEY, None)
    else:
        request.session[SETUP_KEY] = device.pk


def stash_codes_to_show(request: HttpRequest, codes: list[str], *, continue_url: str) -> None:
    """Keep new recovery codes (encrypted) until the next GET shows them once (POST-redirect-GET)."""
    request.session[SHOW_CODES_KEY] = {"codes": crypto.encrypt("\n".join(codes).encode()), "continue": continue_url}


def take_codes_to_show(request: HttpRequest) -> tuple[list[str], str] | None:
    """The codes stashed for this session, removed as they are read: a reload shows nothing."""
    stashed = request.session.pop(SHOW_CODES_KEY, None)
    if not stashed:
        return None
    return crypto.decrypt(stashed["codes"]).decode().split("\n"), stashed["continue"]


SHOW_SIGNIN_CODE_KEY = "clinicauth_2fa_show_signin_code"  # an issued one-time code, encrypted, until shown once


def stash_signin_code_to_show(request: HttpRequest, *, member_pk: int, code: str, expires_at: datetime.datetime) -> None:
    """Keep an issued one-time sign-in code (encrypted) until the next GET shows it once."""
    request.session[SHOW_SIGNIN_CODE_KEY] = {
        "member": member_pk,
        "code": crypto.encrypt(code.encode()),
        "expires_at": expires_at.isoformat(),
    }


def take_signin_code_to_show(request: HttpRequest, *, member_pk: int) -> tuple[str, datetime.datetime] | None:
    """The code stashed for this member, removed as it is read: a reload shows nothing."""
    stashed = request.session.get(SHOW_SIGNIN_CODE_KEY)
    if not stashed or stashed["member"] != member_pk:
        return None
    del request.session[SHOW_SIGNIN_CODE_KEY]
    return crypto.decrypt(stashed["code"]).decode(), datetime.datetime.fromisoformat(stashed["expires_at"])


# django-otp-webauthn keeps each ceremony's state (its challenge) under these keys; it pops
# the state when the ceremony completes, so a challenge is used once. Its age is ours to limit.
PASSKEY_STATE_KEYS = {"register": "otp_webauthn_register_state", "authenticate": "otp_webauthn_authentication_state"}
PASSKEY_ISSUED_KEY = "clinicauth_passkey_challenge_at"


def note_passkey_challenge(request: HttpRequest, ceremony: str) -> None:
    issued = request.session.get(PASSKEY_ISSUED_KEY, {})
    request.session[PASSKEY_ISSUED_KEY] = {**issued, ceremony: int(time.time())}


def passkey_challenge_is_fresh(request: HttpRequest, ceremony: str) -> bool:
    issued_at = request.session.get(PASSKEY_ISSUED_KEY, {}).get(ceremony)
    return issued_at is not None and time.time() - issued_at <= settings.OTP_WEBAUTHN_TIMEOUT_SECONDS


def drop_passkey_challenge(request: HttpRequest, ceremony: str) -> None:
    request.session.pop(PASSKEY_STATE_KEYS[ceremony], None)
    issued = {k: v for k, v in request.session.get(PASSKEY_ISSUED_KEY, {}).items() if k != ceremony}
    request.session[PASSKEY_ISSUED_KEY] = issued


# Re-authentication before sensitive actions: when the session last proved its factor, and the
# actions waiting for that proof, each under an id of its own carried in the confirmation page
# (replayed with the form fields its view reads, once proved).
REAUTH_AT_KEY = "clinicauth_reauth_at"
PENDING_ACTIONS_KEY = "clinicauth_pending_actions"
# How long a parked action waits for its confirmation (not the re-auth window: typing a code takes time).
PENDING_ACTION_LIFETIME = 10 * 60
MAX_PENDING_ACTIONS = 5  # a few tabs' worth; the oldest goes first


def note_reauth(request: HttpRequest) -> None:
    request.session[REAUTH_AT_KEY] = int(time.time())


def reauth_is_fresh(request: HttpRequest) -> bool:
    proved_at = request.session.get(REAUTH_AT_KEY)
    return proved_at is not None and time.time() - proved_at <= settings.CLINICAUTH_REAUTH_WINDOW


def _live_pending_actions(request: HttpRequest) -> dict[str, dict]:
    now = time.time()
    actions = request.session.get(PENDING_ACTIONS_KEY) or {}
    return {key: action for key, action in actions.items() if now - action["at"] <= PENDING_ACTION_LIFETIME}


def stash_pending_action(request: HttpRequest, *, label: str, fields: tuple[str, ...] = ()) -> str:
    """Park the request's action until the person confirms it's them; returns its id. Only the
    POST fields its view reads (`fields`) are kept."""
    data = {key: request.POST.getlist(key) for key in fields if key in request.POST} if request.method == "POST" else {}
    actions = _live_pending_actions(request)
    for old in sorted(actions, key=lambda key: actions[key]["at"])[: max(0, len(actions) - MAX_PENDING_ACTIONS + 1)]:
        del actions[old]
    action_id = secrets.token_urlsafe(12)
    actions[action_id] = {
        "method": request.method,
        "path": request.get_full_path(),
        "data": data,
        "label": label,
        "at": int(time.time()),
    }
    request.session[PENDING_ACTIONS_KEY] = actions
    return action_id


def pending_action(request: HttpRequest, action_id: str | None) -> dict | None:
    """The parked action with this id, while it still waits."""
    return _live_pending_actions(request).get(action_id) if action_id else None


def has_pending_action(request: HttpRequest) -> bool:
    return bool(_live_pending_actions(request))


def take_pending_action(request: HttpRequest, action_id: str) -> dict | None:
    """The parked action with this id, forgotten as it is taken (it runs once)."""
    actions = _live_pending_actions(request)
    action = actions.pop(action_id, None)
    request.session[PENDING_ACTIONS_KEY] = actions
    return action
