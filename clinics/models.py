import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def default_time_zone() -> str:
    return settings.TIME_ZONE


def validate_time_zone(value: str) -> None:
    """An IANA name zoneinfo knows ("Europe/London"); anything else would break the date rules."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Unknown time zone: %(value)s", params={"value": value}) from None


class Clinic(models.Model):
    name = models.CharField(max_length=120, unique=True)
    address = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    mandatory_2fa = models.BooleanField(
        "Mandatory 2FA",
        default=False,
        help_text="Every user of this clinic must set up two-factor authentication before using the application.",
    )
    # Null: from the moment the flag is on. A date: from the start of that day in time_zone.
    mandatory_from = models.DateField(
        "Mandatory 2FA from", null=True, blank=True, help_text="Empty means from the moment Mandatory 2FA is on."
    )
    time_zone = models.CharField(max_length=64, default=default_time_zone, validators=[validate_time_zone])
    # When set-up reminders were last sent: at most once per 24 hours, enforced by a conditional UPDATE.
    reminders_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
