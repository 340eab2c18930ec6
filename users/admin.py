from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from clinic_auth.twofactor import services
from clinic_auth.http import client_ip
from clinic_auth.twofactor.models import AuditEvent

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
