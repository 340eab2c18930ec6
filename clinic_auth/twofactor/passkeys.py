"""Passkeys and security keys: django-otp-webauthn's views, joined to this app's 2FA core.

The library does the WebAuthn work (py_webauthn underneath: challenge, origin,
RP ID, signature, sign count). These subclasses only add what it cannot know:
who may start a ceremony at which gate, the challenge's expiry, the session's
verified state and key rotation, naming, audit and e-mail (services), and
where the browser goes next.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.db import transaction
from django.urls import path, reverse
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions, views

from clinic_auth.http import safe_next

from . import devices, reauth, services, session, texts
from clinic_auth.http import client_ip
from .policy import Gate

# Gates at which each ceremony may run: a second factor at the challenge; a new
# key from a session that passed 2FA, or one setting up its first method.
AUTHENTICATION_GATES = frozenset({Gate.CHALLENGE})
# ... and a signed-in session confirming it's them before a sensitive action.
REAUTHENTICATION_GATES = frozenset({Gate.VERIFIED})
REGISTRATION_GATES = frozenset({Gate.VERIFIED, Gate.OPEN, Gate.SETUP})


class NotAtThisStep(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_code = "not_at_this_step"
    default_detail = texts.MESSAGES["passkey_wrong_step"]


class ChallengeExpired(exceptions.OTPWebAuthnApiError):
    status_code = 400
    default_code = "challenge_expired"
    default_detail = texts.MESSAGES["passkey_expired"]


def _require_gate(request, allowed: frozenset) -> None:
    if not request.user.is_authenticated:
        raise exceptions.NotAuthenticated()
    if session.request_gate(request) not in allowed:
        raise NotAtThisStep()


def _require_fresh_challenge(request, ceremony: str) -> None:
    if not session.passkey_challenge_is_fresh(request, ceremony):
        session.drop_passkey_challenge(request, ceremony)
        raise ChallengeExpired()


class RegistrationBegin(views.BeginCredentialRegistrationView):
    def check_can_register(self):
        _require_gate(self.request, REGISTRATION_GATES)

    def post(self, *args, **kwargs):
        if devices.is_enrolled(self.request.user):  # adding to an account that has a method already
            asked = reauth.confirmation_needed(self.request, texts.message("action_add_key"), json_only=True)
            if asked is not None:
                return asked
        response = super().post(*args, **kwargs)
        session.note_passkey_challenge(self.request, "register")
        return response


class RegistrationComplete(views.CompleteCredentialRegistrationView):
    def check_can_register(self):
        _require_gate(self.request, REGISTRATION_GATES)
        _require_fresh_challenge(self.request, "register")

    def post(self, *args, **kwargs):
        request = self.request
        gate_before = session.request_gate(request)
        with transaction.atomic():
            response = super().post(*args, **kwargs)
            credential = devices.keys_of(request.user).get(pk=_json(response)["id"])
            codes = services.passkey_added(user=request.user, credential=credential, ip_address=client_ip(request))
        messages.success(request, texts.message("key_added", name=credential.name))
        if codes:
            # The first method: enrolment is complete, as after the authenticator app.
            session.mark_verified(request, credential, completes_sign_in=gate_before != Gate.OPEN)
            messages.success(request, texts.message("enabled"))
            session.stash_codes_to_show(request, codes, continue_url=safe_next(request, default="home"))
            redirect_url = reverse("two_factor_recovery_codes")
        else:
            redirect_url = reverse("profile")
        return views.JsonResponse({"id": credential.pk, "redirect_url": redirect_url})


def _require_sign_in_or_reauth(request) -> None:
    allowed = AUTHENTICATION_GATES | (REAUTHENTICATION_GATES if session.pending_action(request) else frozenset())
    _require_gate(request, allowed)


class AuthenticationBegin(views.BeginCredentialAuthenticationView):
    def check_can_authenticate(self):
        _require_sign_in_or_reauth(self.request)

    def post(self, *args, **kwargs):
        response = super().post(*args, **kwargs)
        session.note_passkey_challenge(self.request, "authenticate")
        return response


class AuthenticationComplete(views.CompleteCredentialAuthenticationView):
    def check_can_authenticate(self):
        _require_sign_in_or_reauth(self.request)
        _require_fresh_challenge(self.request, "authenticate")
        self.reauthenticating = session.request_gate(self.request) in REAUTHENTICATION_GATES

    def complete_auth(self, device):
        if self.reauthenticating:
            session.note_reauth(self.request)
        else:
            session.mark_verified(self.request, device)

    def get_success_url(self):
        return reverse(reauth.CONFIRM_VIEW) if self.reauthenticating else safe_next(self.request)

    def handle_exception(self, exc):
        # Every refusal of a key at sign-in is audited: another user's key, an unknown
        # key, a replayed or expired challenge, a signature or sign count that fails.
        if isinstance(exc, exceptions.OTPWebAuthnApiError) and self.request.user.is_authenticated:
            # The plugin rewrites py_webauthn's errors; the original says what exactly failed.
            cause = exc.__cause__ or exc.__context__
            services.passkey_refused(
                user=self.request.user, reason=f"{exc.code}: {cause or exc}", ip_address=client_ip(self.request)
            )
        return super().handle_exception(exc)


def _json(response) -> dict:
    return json.loads(response.content)


# Same namespace and names as django_otp_webauthn.urls, so its template tags find them.
app_name = "otp_webauthn"
urlpatterns = [
    path("registration/begin/", RegistrationBegin.as_view(), name="credential-registration-begin"),
    path("registration/complete/", RegistrationComplete.as_view(), name="credential-registration-complete"),
    path("authentication/begin/", AuthenticationBegin.as_view(), name="credential-authentication-begin"),
    path("authentication/complete/", AuthenticationComplete.as_view(), name="credential-authentication-complete"),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]), name="js-i18n-catalog"),
]
