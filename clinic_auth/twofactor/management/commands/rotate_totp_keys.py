from django.core.management.base import BaseCommand
from django.db import transaction

from clinic_auth.twofactor import crypto
from clinic_auth.twofactor.models import EncryptedTOTPDevice


class Command(BaseCommand):
    help = (
        "Re-encrypt every TOTP secret with the first key in TOTP_ENCRYPTION_KEYS. "
        "Run after putting a new key first; then the old key can be removed."
    )

    def handle(self, *args, **options):
        rotated = 0
        with transaction.atomic():
            for device in EncryptedTOTPDevice.objects.select_for_update().only("pk", "encrypted_key"):
                device.encrypted_key = crypto.rotate(device.encrypted_key)
                device.save(update_fields=["encrypted_key"])
                rotated += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rotated} TOTP secret(s) with the current key."))
