from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.html import format_html

from clinic_auth.http import client_ip
from clinic_auth.twofactor import services
from clinic_auth.twofactor.models import AuditEvent
from clinics.admin import ClinicAdmin
from clinics.models import Clinic

from .forms import ClinicCreateForm
from .membership import clinic_create
from .models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "clinic", "role", "is_staff")
    list_filter = ("clinic", "role", "is_staff", "is_superuser", "is_active")
    list_select_related = ("clinic",)
    fieldsets = DjangoUserAdmin.fieldsets + (("Clinic", {"fields": ("clinic", "role")}),)
    add_fieldsets = DjangoUserAdmin.add_fieldsets + (("Clinic", {"fields": ("clinic", "role")}),)
    actions = ["reset_two_factor"]

    @admin.action(description="Reset two-factor authentication (authenticators, set-ups in progress, lockouts)")
    def reset_two_factor(self, request, queryset):
        for user in queryset:
            removed = services.twofa_reset(
                user=user,
                actor=request.user,
                action=AuditEvent.Action.DISABLED_BY_OPERATOR,
                ip_address=client_ip(request),
            )
            if removed.anything_to_reset:
                self.message_user(
                    request,
                    f"{user.username}: removed {removed.describe()}; all their sessions have ended.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{user.username}: nothing to reset.", messages.INFO)


class ClinicWithFirstAdminAdmin(ClinicAdmin):
    """The Clinic pages, whose Add form also creates the clinic's first clinic admin and invites them,
    as `manage.py create_clinic` does. Registered here because the clinics app knows no users."""

    add_fieldsets = (
        (None, {"fields": ("name", "address", "phone", "time_zone")}),
        ("First clinic admin", {"fields": ("admin_email", "admin_username", "admin_first_name", "admin_last_name")}),
    )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ClinicCreateForm
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        created = clinic_create(
            clinic=obj,
            admin_email=data["admin_email"],
            admin_username=data["admin_username"],
            admin_first_name=data["admin_first_name"],
            admin_last_name=data["admin_last_name"],
            actor=request.user,
            base_url=settings.SITE_URL,
            ip=client_ip(request),
        )
        self.message_user(
            request,
            format_html(
                "First clinic admin {} invited by e-mail. Their link to set a password (works once, for 72 hours): {}",
                created.admin.username,
                created.link,
            ),
            messages.SUCCESS,
        )


admin.site.unregister(Clinic)
admin.site.register(Clinic, ClinicWithFirstAdminAdmin)
