from django.contrib import admin
from django_otp_webauthn.models import WebAuthnCredential

from .models import AuditEvent, EncryptedTOTPDevice, RecoveryCodeDevice


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Removing a device goes through `manage.py reset_2fa` or the clinic's
        # Users page, which also end sessions and write the audit trail.
        return False


@admin.register(EncryptedTOTPDevice)
class EncryptedTOTPDeviceAdmin(ReadOnlyAdmin):
    """Never shows the secret or a QR code: the operator needs neither."""

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count")
    list_select_related = ("user",)


@admin.register(WebAuthnCredential)
class WebAuthnCredentialAdmin(ReadOnlyAdmin):
    """Names and dates only: never the public key or the credential id."""

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "sign_count")
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
