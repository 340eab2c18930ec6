from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from users.forms import ClinicCreateForm
from users.membership import clinic_create

# The command's options, by the form field each one fills.
OPTIONS = {
    "name": "NAME",
    "address": "--address",
    "phone": "--phone",
    "time_zone": "--time-zone",
    "admin_email": "--admin-email",
    "admin_username": "--admin-username",
    "admin_first_name": "--admin-first-name",
    "admin_last_name": "--admin-last-name",
}


class Command(BaseCommand):
    help = (
        "Create a clinic and its first clinic admin, and print the admin's single-use link to set a "
        "password (also e-mailed to them; it works once, for 72 hours)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help='The clinic\'s name, e.g. "Riverside Physio".')
        parser.add_argument(
            "--admin-email",
            required=True,
            help="The first clinic admin's e-mail address.",
        )
        parser.add_argument(
            "--admin-username",
            default="",
            help="Their username (default: the e-mail address).",
        )
        parser.add_argument("--admin-first-name", default="")
        parser.add_argument("--admin-last-name", default="")
        parser.add_argument(
            "--time-zone",
            default="",
            help=f"IANA time zone, e.g. Europe/Paris (default: {settings.TIME_ZONE}).",
        )
        parser.add_argument("--address", default="")
        parser.add_argument("--phone", default="")

    def handle(self, *args, **options):
        form = ClinicCreateForm(data={field: options[field] for field in OPTIONS})
        if not form.is_valid():
            problems = [
                f"{OPTIONS.get(field, 'error')}: {message}"
                if field in OPTIONS
                else message
                for field, messages in form.errors.items()
                for message in messages
            ]
            raise CommandError("Nothing was created.\n  " + "\n  ".join(problems))
        data = form.cleaned_data
        try:
            created = clinic_create(
                clinic=form.save(commit=False),
                admin_email=data["admin_email"],
                admin_username=data["admin_username"],
                admin_first_name=data["admin_first_name"],
                admin_last_name=data["admin_last_name"],
                actor=None,
                base_url=settings.SITE_URL,
                ip=None,
            )
        except IntegrityError:  # created by someone else between the check and the save
            raise CommandError(
                "Nothing was created: that clinic or username was taken a moment ago. Run it again."
            ) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Created clinic {created.clinic.name!r} ({created.clinic.time_zone})."
            )
        )
        self.stdout.write(
            f"First clinic admin: {created.admin.username} <{created.admin.email}>"
        )
        self.stdout.write(
            f"Their link to set a password (works once, until {created.expires_at:%Y-%m-%d %H:%M} UTC; also e-mailed to them):"
        )
        self.stdout.write(created.link)
