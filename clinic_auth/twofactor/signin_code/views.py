from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from clinic_auth.http import client_ip
from clinic_auth.permissions import ClinicAdminRequiredMixin

from .. import devices, reauth, session, texts
from .services import SelfIssueRefused, signin_code_issue


def after_signin_code_sign_in(request, device):
    """Signed in with a code from an admin: straight to a new authenticator app; the old one keeps
    working until the new one is confirmed."""
    session.start_replacing_authenticator(request)
    messages.warning(request, texts.message("signin_code_used"))
    return redirect("two_factor_setup")


@method_decorator(never_cache, name="dispatch")
class MemberSigninCodeView(ClinicAdminRequiredMixin, View):
    """Issue a one-time sign-in code for a member who lost their phone: confirm (GET), then
    issue (POST, after "Confirm it's you" when the admin has not proved a factor recently) and
    show it once on the GET the POST redirects to. A reload of that page issues nothing: it says
    the code was shown and offers to issue a new one."""

    template_name = "twofactor/signin_code/issue.html"

    def refusal(self, request, member):
        if member.pk == request.user.pk:
            return texts.message("signin_code_self_refused")
        if not devices.is_enrolled(member):
            return texts.message("signin_code_needs_2fa", name=member.display_name)
        return None

    def get(self, request, pk: int):
        member = self.member(pk)
        refused = self.refusal(request, member)
        if refused:
            messages.error(request, refused)
            return redirect("user_detail", pk=member.pk)
        shown = session.take_signin_code_to_show(request, member_pk=member.pk)
        if shown is not None:
            code, expires_at = shown
            context = {"member": member, "code": f"{code[:4]} {code[4:]}", "expires_at": expires_at}
            return render(request, self.template_name, context)
        return render(request, self.template_name, {"member": member, "already_shown": "issued" in request.GET})

    def post(self, request, pk: int):
        member = self.member(pk)
        refused = self.refusal(request, member)
        if refused:
            messages.error(request, refused)
            return redirect("user_detail", pk=member.pk)
        asked = reauth.confirmation_needed(request, texts.message("action_issue_code", name=member.display_name))
        if asked is not None:
            return asked
        try:
            code, expires_at = signin_code_issue(user=member, actor=request.user, ip_address=client_ip(request))
        except SelfIssueRefused:
            messages.error(request, texts.message("signin_code_self_refused"))
            return redirect("user_detail", pk=member.pk)
        session.stash_signin_code_to_show(request, member_pk=member.pk, code=code, expires_at=expires_at)
        return redirect(reverse("user_signin_code", args=[member.pk]) + "?issued=1")
