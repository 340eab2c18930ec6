import csv
import zoneinfo
from datetime import datetime, time, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.views import View

from clinic_auth.http import client_ip
from clinic_auth.permissions import ClinicAdminRequiredMixin
from clinic_auth.twofactor import devices, policy, reauth, services, texts
from clinic_auth.twofactor.models import AuditEvent

from .forms import TIME_ZONE_SUGGESTIONS, AuditFilterForm, ClinicForm
from .models import Clinic

AUDIT_EVENTS_PER_PAGE = 50
CSV_COLUMNS = ["Time", "Event", "Member", "Actor", "IP address", "Details"]
# A cell a spreadsheet would read as a formula (OWASP "CSV injection") gets a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def readiness(clinic: Clinic) -> dict[str, int]:
    """How many active members the clinic has and how many of them have not set up 2FA (one query):
    a deactivated member is neither asked nor counted."""
    counts = clinic.users.filter(is_active=True).aggregate(
        total=Count("pk"), enrolled=Count("pk", filter=Q(twofa_enrolled=True))
    )
    return {"total": counts["total"], "not_set_up": counts["total"] - counts["enrolled"]}


class ClinicSettingsView(ClinicAdminRequiredMixin, View):
    def get(self, request):
        context = {
            "clinic": self.clinic,
            "readiness": readiness(self.clinic),
            "pending": policy.enforcement_of(self.clinic).pending(),
        }
        return render(request, "clinics/settings.html", context)


class ClinicEditView(ClinicAdminRequiredMixin, View):
    def get(self, request):
        return self.render(ClinicForm(instance=self.clinic))

    def post(self, request):
        was_mandatory = self.clinic.mandatory_2fa
        form = ClinicForm(request.POST, instance=self.clinic)
        if not form.is_valid():
            return self.render(form)
        if was_mandatory and not form.cleaned_data["mandatory_2fa"]:
            asked = reauth.confirmation_needed(request, texts.message("action_mandatory_off"), fields=tuple(ClinicForm.base_fields))
            if asked is not None:
                return asked
        clinic = form.save(commit=False)
        # The flag, its date and the zone are changed only through the service, which also re-checks every member's session.
        clinic.mandatory_2fa, clinic.time_zone = Clinic.objects.values_list("mandatory_2fa", "time_zone").get(pk=clinic.pk)
        clinic.save()
        mandatory = form.cleaned_data["mandatory_2fa"]
        services.clinic_set_mandatory(
            clinic=clinic,
            mandatory=mandatory,
            mandatory_from=form.cleaned_data["mandatory_from"],
            time_zone=form.cleaned_data["time_zone"],
            actor=request.user,
            ip_address=client_ip(request),
        )
        messages.success(request, texts.message("clinic_saved"))
        enforcement = policy.enforcement_of(clinic)
        if enforcement.pending():
            # The date is said with the save, so nobody reads "on" as "from now".
            messages.info(request, texts.mandatory_from_saved(enforcement.starts_on, readiness(clinic)["not_set_up"]))
        elif mandatory and not was_mandatory:
            # The count the page warned about before Save, confirmed after it (no extra click).
            messages.info(request, texts.members_to_set_up(readiness(clinic)["not_set_up"]))
        return redirect("clinic_settings", clinic_pk=clinic.pk)

    def render(self, form):
        context = {
            "form": form,
            "clinic": self.clinic,
            "readiness": readiness(self.clinic),
            # The count of who Save sends to set-up includes the admin saving, when they have no 2FA.
            "includes_you": not devices.is_enrolled(self.request.user),
            "time_zone_suggestions": TIME_ZONE_SUGGESTIONS,
        }
        return render(request=self.request, template_name="clinics/edit.html", context=context)


def filtered_events(clinic: Clinic, filters: dict) -> QuerySet[AuditEvent]:
    """The clinic's events matching the filters, newest first with a stable tie-break.

    Dates are whole days in the clinic's time zone.
    """
    events = AuditEvent.objects.filter(clinic=clinic)
    if filters.get("action"):
        events = events.filter(action=filters["action"])
    if filters.get("member"):
        events = events.filter(target_username__iexact=filters["member"])
    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    if filters.get("date_from"):
        events = events.filter(created_at__gte=datetime.combine(filters["date_from"], time.min, tzinfo=tz))
    if filters.get("date_to"):
        events = events.filter(created_at__lt=datetime.combine(filters["date_to"] + timedelta(days=1), time.min, tzinfo=tz))
    return events.order_by("-created_at", "-id")


def audit_filters(request) -> tuple[AuditFilterForm, dict, str]:
    """The bound filter form, the valid filters, and them as a query string for links."""
    form = AuditFilterForm(request.GET)
    form.is_valid()  # keep each valid field: a bad date must not drop a good event filter
    filters = {key: value for key, value in form.cleaned_data.items() if value}
    keep = urlencode({key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in filters.items()})
    return form, filters, keep


class AuditLogView(ClinicAdminRequiredMixin, View):
    def get(self, request):
        form, filters, keep = audit_filters(request)
        events_qs = filtered_events(self.clinic, filters)
        page = Paginator(events_qs, AUDIT_EVENTS_PER_PAGE).get_page(request.GET.get("page"))
        context = {"page": page, "clinic": self.clinic, "form": form, "keep_query": keep, "filtered": bool(filters)}
        return render(request, "clinics/audit_log.html", context)


def neutralise(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class _Echo:
    """csv.writer writes each row here and gets the line back, to stream it."""

    def write(self, value: str) -> str:
        return value


class AuditLogCSVView(ClinicAdminRequiredMixin, View):
    """Exactly the filtered rows, streamed: the queryset is read in chunks, never all at once."""

    def get(self, request):
        _form, filters, _keep = audit_filters(request)
        events_qs = filtered_events(self.clinic, filters).values_list(
            "created_at", "action", "target_username", "actor_username", "ip_address", "detail"
        )
        tz = zoneinfo.ZoneInfo(self.clinic.time_zone)
        names = dict(AuditEvent.Action.choices)
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(CSV_COLUMNS)
            for created_at, action, member, actor, ip_address, detail in events_qs.iterator(chunk_size=2000):
                when = timezone.localtime(created_at, tz).isoformat(timespec="seconds")
                cells = [when, str(names.get(action, action)), member, actor or "system", ip_address or "", detail]
                yield writer.writerow([neutralise(cell) for cell in cells])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime(timezone.now(), tz).strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
        return response
