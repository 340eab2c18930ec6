import zoneinfo
from datetime import date, timedelta
from pathlib import Path

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic_auth.twofactor.models import AuditEvent

from .models import Clinic, validate_time_zone

MAX_GRACE_DAYS = 30
# Where the clinics this is for are (North America, Latin America, Europe): offered first.
COMMON_TIME_ZONES = [
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
    "America/Toronto", "America/Vancouver", "America/Mexico_City", "America/Bogota", "America/Lima",
    "America/Santiago", "America/Argentina/Buenos_Aires", "Europe/London", "Europe/Dublin", "Europe/Paris",
    "Europe/Madrid", "Europe/Berlin", "Australia/Sydney", "UTC",
]


def canonical_time_zones() -> list[str]:
    """IANA's zone names, one or more per country (zone.tab), without the old aliases it keeps for compatibility
    (Africa/Asmera, US/Eastern): every one zoneinfo can load, sorted."""
    for folder in zoneinfo.TZPATH:
        table = Path(folder) / "zone.tab"
        if table.is_file():
            names = {line.split("\t")[2] for line in table.read_text().splitlines() if line and not line.startswith("#")}
            return sorted(names | {"UTC"})
    return sorted(name for name in zoneinfo.available_timezones() if "/" in name or name == "UTC")


ALL_TIME_ZONES = canonical_time_zones()
TIME_ZONE_CHOICES = [(name, name) for name in ALL_TIME_ZONES]
TIME_ZONE_SUGGESTIONS = [name for name in COMMON_TIME_ZONES if name in ALL_TIME_ZONES] + [
    name for name in ALL_TIME_ZONES if name not in COMMON_TIME_ZONES
]


class TimeZoneField(forms.ChoiceField):
    """An IANA time zone: offered from the canonical names, common ones first, and typed to search
    (a datalist); an old alias zoneinfo still knows (a clinic's saved zone) is accepted too."""

    def valid_value(self, value) -> bool:
        try:
            validate_time_zone(value)
        except forms.ValidationError:
            return False
        return True


class ClinicForm(forms.ModelForm):
    """The clinic's details and its Mandatory 2FA: from now (the default) or from a date up to 30 days ahead."""

    require_from = forms.ChoiceField(
        label=_("Require from"),
        choices=[("now", _("Now")), ("date", _("A date (up to 30 days ahead)"))],
        initial="now",
        required=False,
        widget=forms.RadioSelect,
    )
    mandatory_from = forms.DateField(
        label=_("Date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("From the start of this day in the clinic's time zone. Until then, members who have not set up 2FA see a reminder."),
    )
    time_zone = TimeZoneField(
        label=_("Time zone"),
        choices=TIME_ZONE_CHOICES,
        required=False,
        widget=forms.TextInput(attrs={"list": "time-zone-list", "autocomplete": "off", "spellcheck": "false"}),
        help_text=_("Type part of the name to search, e.g. Paris or Chicago."),
        error_messages={"invalid_choice": _("Unknown time zone: %(value)s. Use a name such as Europe/Paris.")},
    )

    class Meta:
        model = Clinic
        fields = ["name", "address", "phone", "mandatory_2fa", "time_zone"]
        labels = {"mandatory_2fa": _("Mandatory 2FA")}
        help_texts = {
            "mandatory_2fa": _(
                "When on, every user of this clinic must set up two-factor authentication "
                "at their next sign-in (or next page view) before they can use the application."
            )
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.mandatory_from is not None:
            self.initial.setdefault("require_from", "date")
            self.initial.setdefault("mandatory_from", self.instance.mandatory_from)

    def clean_time_zone(self) -> str:
        # Left out of a submitted form, the clinic keeps its time zone.
        return self.cleaned_data.get("time_zone") or self.instance.time_zone

    def clean(self):
        cleaned = super().clean()
        chosen = cleaned.get("mandatory_from")
        if not cleaned.get("mandatory_2fa") or cleaned.get("require_from") != "date":
            cleaned["mandatory_from"] = None
            return cleaned
        if chosen is None:
            self.add_error("mandatory_from", _("Choose the date from which 2FA is required, or choose Now."))
            return cleaned
        tz_name = cleaned.get("time_zone") or self.instance.time_zone
        today = timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(tz_name)).date()
        unchanged = chosen == self.instance.mandatory_from
        if not unchanged and not today <= chosen <= today + timedelta(days=MAX_GRACE_DAYS):
            self.add_error("mandatory_from", _("Choose a date from today to 30 days ahead."))
        return cleaned


class ClinicAdminForm(forms.ModelForm):
    """The Django admin's clinic form: a time zone left out keeps the clinic's own."""

    time_zone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES, required=False)

    class Meta:
        model = Clinic
        fields = ["name", "address", "phone", "mandatory_2fa", "mandatory_from", "time_zone"]

    def clean_time_zone(self) -> str:
        return self.cleaned_data.get("time_zone") or self.instance.time_zone


# The dates a filter may name: a day in any time zone, and the day after it, stay datetimes
# (9999-12-31 + 1 day, or 0001-01-01 moved to UTC, would overflow).
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(9998, 12, 31)


class AuditFilterForm(forms.Form):
    """The Audit Log's filters; every field is optional and kept in the URL."""

    action = forms.ChoiceField(label=_("Event"), required=False, choices=[("", _("All events")), *AuditEvent.Action.choices])
    member = forms.CharField(label=_("Member (username)"), required=False, max_length=150, strip=True)
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date", "min": EARLIEST_DATE.isoformat(), "max": LATEST_DATE.isoformat()}),
        validators=[MinValueValidator(EARLIEST_DATE), MaxValueValidator(LATEST_DATE)],
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date", "min": EARLIEST_DATE.isoformat(), "max": LATEST_DATE.isoformat()}),
        validators=[MinValueValidator(EARLIEST_DATE), MaxValueValidator(LATEST_DATE)],
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("date_from") and cleaned.get("date_to") and cleaned["date_from"] > cleaned["date_to"]:
            self.add_error("date_to", _("The end date must be on or after the start date."))
        return cleaned
