from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views import View

from clinic_auth.twofactor import reauth, services, texts
from clinic_auth.twofactor.events import client_ip
from clinic_auth.twofactor.models import AuditEvent

from .forms import ClinicForm
from .models import Clinic

AUDIT_EVENTS_PER_PAGE = 50


class ClinicAdminMixin:
    """Staff get 403; an admin asking for another clinic's pages gets 404."""

    def dispatch(self, request, *args, pk: int | None = None, **kwargs):
        if not request.user.is_clinic_admin:
            raise PermissionDenied(texts.message("clinic_settings_admins_only"))
        if pk != request.user.clinic_id:
            raise Http404("No such clinic.")
        self.clinic = Clinic.objects.get(pk=request.user.clinic_id)
        return super().dispatch(request, *args, **kwargs)


class ClinicSettingsView(ClinicAdminMixin, View):
    def get(self, request):
        return render(request, "clinics/settings.html", {"clinic": self.clinic})


class ClinicEditView(ClinicAdminMixin, View):
    def get(self, request):
        return self.render(ClinicForm(instance=self.clinic))

    def post(self, request):
        was_mandatory = self.clinic.mandatory_2fa
        form = ClinicForm(request.POST, instance=self.clinic)
        if not form.is_valid():
            return self.render(form)
        if was_mandatory and not form.cleaned_data["mandatory_2fa"]:
            asked = reauth.confirmation_needed(request, texts.message("action_mandatory_off"))
            if asked is not None:
                return asked
        clinic = form.save(commit=False)
        # The flag is changed only through the service, which also re-checks every member's session.
        clinic.mandatory_2fa = Clinic.objects.values_list("mandatory_2fa", flat=True).get(pk=clinic.pk)
        clinic.save()
        services.clinic_set_mandatory(
            clinic=clinic, mandatory=form.cleaned_data["mandatory_2fa"], actor=request.user, ip_address=client_ip(request)
        )
        messages.success(request, texts.message("clinic_saved"))
        return redirect("clinic_settings", pk=clinic.pk)

    def render(self, form):
        return render(request=self.request, template_name="clinics/edit.html", context={"form": form, "clinic": self.clinic})


class AuditLogView(ClinicAdminMixin, View):
    def get(self, request):
        events_qs = AuditEvent.objects.filter(clinic=self.clinic).order_by("-created_at", "-id")
        page = Paginator(events_qs, AUDIT_EVENTS_PER_PAGE).get_page(request.GET.get("page"))
        return render(request, "clinics/audit_log.html", {"page": page, "clinic": self.clinic})
