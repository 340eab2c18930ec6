"""Pages for members: add (invite) a member, accept an invitation, forgotten password,
deactivate / reactivate and change role. Thin: the rules are in users/membership.py."""

from __future__ import annotations


from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import PasswordResetConfirmView, PasswordResetDoneView, PasswordResetView
from django.db import IntegrityError
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from clinic_auth.http import client_ip
from clinic_auth.permissions import ClinicAdminRequiredMixin
from clinic_auth.twofactor import devices, reauth
from clinic_auth.twofactor import session as twofactor_session

from . import membership
from .forms import USERNAME_UNAVAILABLE, ChangeRoleForm, ForgotPasswordForm, InviteMemberForm, NewPasswordForm
from .tokens import member_reset_tokens


class InviteMemberView(ClinicAdminRequiredMixin, View):
    template_name = "users/invite.html"

    def get(self, request):
        return render(request, self.template_name, {"form": InviteMemberForm(clinic=request.user.clinic)})

    def post(self, request):
        # "Confirm it's you" first; the form is replayed as submitted once confirmed.
        asked = reauth.confirmation_needed(request, _("add a user"), fields=tuple(InviteMemberForm.base_fields))
        if asked is not None:
            return asked
        form = InviteMemberForm(request.POST, clinic=request.user.clinic)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form})
        try:
            member = membership.member_invite(
                clinic=request.user.clinic,
                invited_by=request.user,
                base_url=settings.SITE_URL,
                ip=client_ip(request),
                **{name: form.cleaned_data[name] for name in ("username", "email", "first_name", "last_name", "role")},
            )
        except IntegrityError:  # another admin took the username between the form's check and the insert
            form.add_error("username", USERNAME_UNAVAILABLE)
            return render(request, self.template_name, {"form": form})
        messages.success(
            request, _("Invitation sent to %(email)s; their username is %(username)s.") % {"email": member.email, "username": member.username}
        )
        return redirect("user_detail", pk=member.pk)


class InvitationResendView(ClinicAdminRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        member = self.member(pk)
        asked = reauth.confirmation_needed(request, _("send a new invitation to %(name)s") % {"name": member.display_name})
        if asked is not None:
            return asked
        try:
            membership.invitation_resend(member=member, actor=request.user, base_url=settings.SITE_URL, ip=client_ip(request))
        except membership.MembershipRefused as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(request, _("A new invitation has been sent to %(email)s.") % {"email": member.email})
        return redirect("user_detail", pk=member.pk)


class InvitationRevokeView(ClinicAdminRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        member = self.member(pk)
        asked = reauth.confirmation_needed(request, _("revoke the invitation of %(name)s") % {"name": member.display_name})
        if asked is not None:
            return asked
        if membership.invitation_revoke(member=member, actor=request.user, ip=client_ip(request)):
            messages.success(request, _("The invitation for %(name)s has been revoked.") % {"name": member.display_name})
        else:
            messages.info(request, _("%(name)s has no open invitation.") % {"name": member.display_name})
        return redirect("user_detail", pk=member.pk)


class MemberDeactivateView(ClinicAdminRequiredMixin, View):
    """Confirm page (GET, changes nothing) and the deactivation itself (POST)."""

    def get(self, request, pk: int):
        member = self.member(pk)
        if member.pk == request.user.pk:
            messages.error(request, _("You cannot deactivate your own account."))
            return redirect("user_detail", pk=member.pk)
        return render(request, "users/user_deactivate_confirm.html", {"member": member})

    def post(self, request, pk: int):
        member = self.member(pk)
        if member.pk != request.user.pk:
            asked = reauth.confirmation_needed(request, _("deactivate %(name)s") % {"name": member.display_name})
            if asked is not None:
                return asked
        try:
            changed = membership.member_deactivate(member=member, actor=request.user, ip=client_ip(request))
        except membership.MembershipRefused as refusal:
            messages.error(request, str(refusal))
        else:
            if changed:
                messages.success(
                    request,
                    _("%(name)s has been deactivated and signed out everywhere.") % {"name": member.display_name},
                )
        return redirect("user_detail", pk=member.pk)


class MemberReactivateView(ClinicAdminRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        member = self.member(pk)
        asked = reauth.confirmation_needed(request, _("reactivate %(name)s") % {"name": member.display_name})
        if asked is not None:
            return asked
        if membership.member_reactivate(member=member, actor=request.user, ip=client_ip(request)):
            messages.success(request, _("%(name)s can sign in again.") % {"name": member.display_name})
        return redirect("user_detail", pk=member.pk)


class MemberChangeRoleView(ClinicAdminRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        member = self.member(pk)
        if member.pk != request.user.pk:  # your own role is refused below, with no confirmation to give
            asked = reauth.confirmation_needed(
                request, _("change the role of %(name)s") % {"name": member.display_name}, fields=("role",)
            )
            if asked is not None:
                return asked
        form = ChangeRoleForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose Staff or Clinic admin."))
            return redirect("user_detail", pk=member.pk)
        try:
            changed = membership.member_change_role(
                member=member, actor=request.user, role=form.cleaned_data["role"], ip=client_ip(request)
            )
        except membership.MembershipRefused as refusal:
            messages.error(request, str(refusal))
        else:
            if changed:
                member.refresh_from_db(fields=["role"])
                messages.success(
                    request,
                    _("%(name)s is now %(role)s.") % {"name": member.display_name, "role": member.get_role_display()},
                )
        return redirect("user_detail", pk=member.pk)


@method_decorator([login_not_required, never_cache, sensitive_post_parameters()], name="dispatch")
class InvitationAcceptView(View):
    """Set your password: the invitee's first password, then the normal sign-in rules."""

    template_name = "users/invitation_accept.html"

    def dispatch(self, request, *args, **kwargs):
        self.invitation = membership.usable_invitation(kwargs["token"])
        if self.invitation is None:
            return render(request, "users/invitation_invalid.html")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, token: str):
        return self.render(NewPasswordForm(self.invitation.user))

    def post(self, request, token: str):
        form = NewPasswordForm(self.invitation.user, request.POST)
        if not form.is_valid():
            return self.render(form)
        member = membership.invitation_accept(
            token=token, password=form.cleaned_data["new_password1"], ip=client_ip(request)
        )
        if member is None:  # used or revoked while the form was open
            return render(request, "users/invitation_invalid.html")
        # The normal rules from here: under Mandatory 2FA the gate sends them to set-up.
        login(request, member, backend=settings.AUTHENTICATION_BACKENDS[0])
        twofactor_session.start_login(request)
        messages.success(request, _("Your password is set. Welcome to %(clinic)s.") % {"clinic": member.clinic.name})
        return redirect("home")

    def render(self, form):
        return render(self.request, self.template_name, {"form": form, "member": self.invitation.user})


class ForgotPasswordView(PasswordResetView):
    """Forgot your password? The same answer at once, whatever was entered: the e-mail, if any, goes
    to the mail queue (settings EMAIL_QUEUE), so no answer waits on the mail server."""

    form_class = ForgotPasswordForm
    template_name = "users/password_reset_form.html"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form):
        membership.password_reset_request(
            identifier=form.cleaned_data["email"], base_url=settings.SITE_URL, ip=client_ip(self.request)
        )
        return redirect(self.success_url)


class ForgotPasswordDoneView(PasswordResetDoneView):
    template_name = "users/password_reset_done.html"


@method_decorator(sensitive_post_parameters(), name="dispatch")
class ResetPasswordView(PasswordResetConfirmView):
    """Django's confirm view; the new password signs nobody in, the user logs in with both factors."""

    form_class = NewPasswordForm
    template_name = "users/password_reset_confirm.html"
    post_reset_login = False
    success_url = reverse_lazy("login")
    token_generator = member_reset_tokens

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def form_valid(self, form):
        # The new password (and the rotated session nonce) kill the link: nothing else to forget.
        membership.password_reset_complete(
            user=self.user, new_password=form.cleaned_data["new_password1"], ip=client_ip(self.request)
        )
        if devices.is_enrolled(self.user):
            done = _("Your password has been changed. Log in with your new password and your verification code.")
        else:
            done = _("Your password has been changed. Log in with your new password.")
        messages.success(self.request, done)
        return redirect(self.get_success_url())

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["has_2fa"] = self.user is not None and devices.is_enrolled(self.user)
        return context
