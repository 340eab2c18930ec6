from django.contrib import messages
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.views import View
from django.views.decorators.cache import never_cache

from clinic_auth.twofactor import events, flows
from clinic_auth.twofactor.forms import TOTPCodeForm
from clinic_auth.twofactor.models import AuditEvent

from . import selectors
from .forms import UserSearchForm
from .models import User

USERS_PER_PAGE = 50


def home(request):
    return render(request, "users/home.html", {"enrolled": flows.is_enrolled(request.user)})


def render_profile(request, *, disable_form=None):
    user = request.user
    enrolled = flows.is_enrolled(user)
    context = {
        "enrolled": enrolled,
        "required_by_clinic": flows.two_factor_required(user),
        "recovery_codes_left": flows.recovery_codes_left(user) if enrolled else 0,
        "disable_form": disable_form or TOTPCodeForm(auto_id="id_disable_%s"),
    }
    return render(request, "users/profile.html", context)


@method_decorator(never_cache, name="dispatch")
class ProfileView(View):
    def get(self, request):
        return render_profile(request)


class ChangePasswordView(PasswordChangeView):
    """Django's view: it keeps this session and, by changing the hash, ends every other one."""

    template_name = "users/password_change.html"
    success_url = reverse_lazy("profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password has been changed. You have been signed out everywhere else.")
        return response


class ClinicAdminRequiredMixin:
    """Only a clinic's own admins manage it; everyone else is refused before any lookup."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_clinic_admin:
            raise PermissionDenied("Only clinic administrators can manage users.")
        return super().dispatch(request, *args, **kwargs)

    def clinic_user(self, pk: int) -> User:
        # Scoped to the admin's clinic, so another clinic's user is a 404, whatever the id.
        return get_object_or_404(selectors.clinic_users(self.request.user.clinic), pk=pk)


class UserListView(ClinicAdminRequiredMixin, View):
    def get(self, request):
        clinic = request.user.clinic
        form = UserSearchForm(request.GET)  # both fields are optional, so always bound
        form.is_valid()  # keep each valid field: an unknown sort must not drop a good search
        query = form.cleaned_data.get("q", "")
        sort = form.cleaned_data.get("sort") or "name"
        users = selectors.user_list(clinic=clinic, query=query, sort=sort)
        page = Paginator(users, USERS_PER_PAGE).get_page(request.GET.get("page"))
        context = {
            "form": form,
            "page": page,
            "query": query,
            "sort": sort,
            "keep_query": urlencode({"q": query, "sort": sort}),
            "counts": selectors.enrolment_counts(clinic),
            "mandatory": clinic.mandatory_2fa,
        }
        return render(request, "users/user_list.html", context)


class UserDetailView(ClinicAdminRequiredMixin, View):
    def get(self, request, pk: int):
        member = self.clinic_user(pk)
        state = flows.twofa_state(member)
        context = {
            "member": member,
            "enrolled": state.enrolled,
            "twofa": state,
            "mandatory": request.user.clinic.mandatory_2fa,
            "is_self": member.pk == request.user.pk,
        }
        return render(request, "users/user_detail.html", context)


class UserDisable2FAView(ClinicAdminRequiredMixin, View):
    """Confirm page (GET, changes nothing) and the disabling itself (POST)."""

    def get(self, request, pk: int):
        member = self.clinic_user(pk)
        if member.pk == request.user.pk:
            messages.error(request, events.message("disable_own_refused"))
            return redirect("user_detail", pk=member.pk)
        state = flows.twofa_state(member)
        if not state.anything_to_reset:
            messages.info(request, events.message("user_has_no_2fa", name=member.display_name))
            return redirect("user_detail", pk=member.pk)
        context = {"member": member, "twofa": state, "mandatory": request.user.clinic.mandatory_2fa}
        return render(request, "users/user_disable_confirm.html", context)

    def post(self, request, pk: int):
        member = self.clinic_user(pk)
        if member.pk == request.user.pk:
            messages.error(request, events.message("disable_own_refused"))
            return redirect("user_detail", pk=member.pk)
        removed = flows.twofa_reset(
            user=member,
            actor=request.user,
            action=AuditEvent.Action.DISABLED_BY_ADMIN,
            ip_address=events.client_ip(request),
        )
        if not removed.anything_to_reset:
            messages.info(request, events.message("user_has_no_2fa", name=member.display_name))
        else:
            messages.success(request, events.message("user_2fa_disabled", name=member.display_name))
            if request.user.clinic.mandatory_2fa:
                messages.info(request, events.message("user_2fa_disabled_mandatory", name=member.display_name))
        return redirect("user_detail", pk=member.pk)
