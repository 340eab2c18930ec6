from django.contrib import admin
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import AuditEvent, RecoveryCodeDevice

# django-otp's own TOTPDevice admin shows the secret key and its QR code; the
# operator never needs either, so replace it with one that shows neither.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Removing a device goes through `manage.py reset_2fa` or the clinic's
        # Users page, which also end sessions and write the audit trail.
        return False


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(ReadOnlyAdmin):
    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count")
    list_select_related = ("user",)


@admin.register(RecoveryCodeDevice)
class RecoveryCodeDeviceAdmin(ReadOnlyAdmin):
    list_display = ("user", "confirmed", "created_at", "last_used_at")
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "actor_username", "target_username", "clinic", "ip_address")
    list_filter = ("action", "clinic")
    search_fields = ("actor_username", "target_username")
