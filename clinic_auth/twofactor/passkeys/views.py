"""Passkeys and security keys: django-otp-webauthn's views, joined to this app's 2FA core, and the
keys' management on My Profile.

The library does the WebAuthn work (py_webauthn underneath: challenge, origin,
RP ID, signature, sign count). These subclasses only add what it cannot know:
who may start a ceremony at which gate, the challenge's expiry, the session's
verified state and key rotation, naming, audit and e-mail (services), and
where the browser goes next.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth import logout
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django_otp_webauthn import exceptions, views

from clinic_auth.http import client_ip, safe_next

from .. import devices, profile, reauth, session, texts
from ..policy import Gate
from .forms import KeyNameForm
from .services import KeyNotFound, LastMethodRequired, passkey_added, passkey_refused, passkey_remove, passkey_rename

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


class PayloadTooLarge(exceptions.OTPWebAuthnApiError):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = texts.MESSAGES["passkey_too_large"]


# A key's answer is a few KB even with an attestation certificate chain; nothing bigger is read.
MAX_CEREMONY_BODY_BYTES = 64 * 1024


class BoundedCeremony:
    """Every passkey endpoint: a body over MAX_CEREMONY_BODY_BYTES is refused before it is read,
    and a body the JSON parser cannot take (nested past Python's recursion limit, not UTF-8, not
    an object where one is needed) is the library's own 400 "malformed_request", never a 500."""

    def dispatch(self, request, *args, **kwargs):
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = MAX_CEREMONY_BODY_BYTES + 1
        if size > MAX_CEREMONY_BODY_BYTES:
            return self.handle_exception(PayloadTooLarge())
        return super().dispatch(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, (RecursionError, ValueError, TypeError, AttributeError, KeyError)):
            exc = exceptions.MalformedRequest()
        return super().handle_exception(exc)


def _require_gate(request, allowed: frozenset) -> None:
    if not request.user.is_authenticated:
        raise exceptions.NotAuthenticated()
    if session.request_gate(request) not in allowed:
        raise NotAtThisStep()


def _require_fresh_challenge(request, ceremony: str) -> None:
    if not session.passkey_challenge_is_fresh(request, ceremony):
        session.drop_passkey_challenge(request, ceremony)
        raise ChallengeExpired()


class RegistrationBegin(BoundedCeremony, views.BeginCredentialRegistrationView):
    def check_can_register(self):
        _require_gate(self.request, REGISTRATION_GATES)

    def post(self, *args, **kwargs):
        # Adding to an account that has a method already, or its first: as for the app (totp/views.py).
        label = "action_add_key" if devices.is_enrolled(self.request.user) else "action_set_up_2fa"
        asked = reauth.confirmation_needed(self.request, texts.message(label), json_only=True)
        if asked is not None:
            return asked
        response = super().post(*args, **kwargs)
        session.note_passkey_challenge(self.request, "register")
        return response


class RegistrationComplete(BoundedCeremony, views.CompleteCredentialRegistrationView):
    def check_can_register(self):
        _require_gate(self.request, REGISTRATION_GATES)
        _require_fresh_challenge(self.request, "register")

    def post(self, *args, **kwargs):
        request = self.request
        gate_before = session.request_gate(request)
        with transaction.atomic():
            response = super().post(*args, **kwargs)
            credential = devices.keys_of(request.user).get(pk=_json(response)["id"])
            codes = passkey_added(user=request.user, credential=credential, ip_address=client_ip(request))
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


class SignInExpired(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_code = "sign_in_expired"
    default_detail = texts.MESSAGES["login_expired"]


def _require_sign_in_or_reauth(request) -> None:
    allowed = AUTHENTICATION_GATES | (REAUTHENTICATION_GATES if session.has_pending_action(request) else frozenset())
    _require_gate(request, allowed)
    if session.request_gate(request) == Gate.CHALLENGE and session.pending_login_expired(request):
        # As the code form does: the password step is too old to finish, the browser is signed out.
        logout(request)
        messages.error(request, texts.message("login_expired"))
        raise SignInExpired()


class AuthenticationBegin(BoundedCeremony, views.BeginCredentialAuthenticationView):
    def check_can_authenticate(self):
        _require_sign_in_or_reauth(self.request)

    def post(self, *args, **kwargs):
        response = super().post(*args, **kwargs)
        session.note_passkey_challenge(self.request, "authenticate")
        return response


class AuthenticationComplete(BoundedCeremony, views.CompleteCredentialAuthenticationView):
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
        # Confirming it's you: back to the confirmation page of the action it named (its `next`).
        return safe_next(self.request, default=reauth.CONFIRM_VIEW) if self.reauthenticating else safe_next(self.request)

    def handle_exception(self, exc):
        # Every refusal of a key at sign-in is audited: another user's key, an unknown
        # key, a replayed or expired challenge, a signature or sign count that fails.
        if isinstance(exc, exceptions.OTPWebAuthnApiError) and self.request.user.is_authenticated:
            # The plugin rewrites py_webauthn's errors; the original says what exactly failed.
            cause = exc.__cause__ or exc.__context__
            passkey_refused(
                user=self.request.user, reason=f"{exc.code}: {cause or exc}", ip_address=client_ip(self.request)
            )
        return super().handle_exception(exc)


def _json(response) -> dict:
    return json.loads(response.content)


class RenameKeyView(View):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        form = KeyNameForm(request.POST, auto_id=f"id_key_{pk}_%s")
        if not form.is_valid():
            return profile.render_profile(request, rename_errors=(pk, form))
        try:
            key = passkey_rename(user=request.user, credential_id=pk, name=form.cleaned_data["name"])
        except KeyNotFound:
            messages.error(request, texts.message("key_not_found"))
        else:
            messages.success(request, texts.message("key_renamed", name=key.name))
        return redirect("profile")


class AddKeyView(View):
    """The "Add a passkey or security key" button of a session that must confirm it's them first."""

    http_method_names = ["post"]

    @method_decorator(reauth.sensitive_action(texts.MESSAGES["action_add_key"]))
    def post(self, request):
        return HttpResponseRedirect(reverse("profile") + "#add-key")


@method_decorator(reauth.sensitive_action(texts.MESSAGES["action_remove_key"]), name="dispatch")
class RemoveKeyView(View):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        name = devices.keys_of(request.user).filter(pk=pk).values_list("name", flat=True).first()
        try:
            was_last = passkey_remove(user=request.user, credential_id=pk, ip_address=client_ip(request))
        except KeyNotFound:
            messages.error(request, texts.message("key_not_found"))
        except LastMethodRequired:
            messages.error(request, texts.message("key_last_required"))
        else:
            if was_last:
                session.keep_after_own_reset(request)
            messages.success(request, texts.message("key_removed_last" if was_last else "key_removed", name=name))
        return redirect("profile")
