from django.core.management.base import BaseCommand
from django.db import transaction

from clinics.models import Clinic
from users.models import User

DEFAULT_PASSWORD = "clinicauth-demo"

DEMO_ACCOUNTS = [
    ("Demo Clinic", "demo-admin", "Dana", "Admin", User.Role.CLINIC_ADMIN),
    ("Demo Clinic", "demo-staff", "Sam", "Staff", User.Role.STAFF),
    ("Northside Clinic", "north-admin", "Nora", "North", User.Role.CLINIC_ADMIN),
    ("Northside Clinic", "north-staff", "Neil", "Northam", User.Role.STAFF),
]


class Command(BaseCommand):
    help = "Create the demo clinics and accounts (safe to run again: it updates, never duplicates)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=DEFAULT_PASSWORD,
            help=f"Password for every demo account (default: {DEFAULT_PASSWORD}).",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Load the demo only into a database with no clinic and no user (what `make run` does), "
            "so a restart never resets a password or signs anyone out.",
        )

    @transaction.atomic
    def handle(self, *args, password: str, if_empty: bool, **options):
        if not password:
            self.stderr.write("The password must not be empty.")
            raise SystemExit(2)
        if if_empty and (Clinic.objects.exists() or User.objects.exists()):
            self.stdout.write("The database already has clinics or users: demo data not loaded, nothing changed.")
            return
        rows = []
        for clinic_name, username, first, last, role in DEMO_ACCOUNTS:
            clinic, _ = Clinic.objects.get_or_create(name=clinic_name)
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com"},
            )
            user.clinic = clinic
            user.role = role
            user.is_active = True
            user.set_password(password)
            user.save()
            rows.append((username, clinic.name, user.get_role_display(), "created" if created else "updated"))
        self.stdout.write("Demo accounts (password: %s)" % password)
        for username, clinic, role, state in rows:
            self.stdout.write(f"  {username:<12} {clinic:<17} {role:<13} {state}")
