"""Accounts for the browser suite, loaded into the served app's own database.

Run by tests/e2e/conftest.py after `migrate` and `seed_demo` (the help article's first
section uses the demo accounts themselves). Every other test gets a clinic of its own, so
the tests do not depend on each other's order. The clinic list lives in CLINICS below and
tests name the accounts they use as "<prefix>-admin" / "<prefix>-staff".
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic_auth.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.utils import timezone  # noqa: E402

from clinics.models import Clinic  # noqa: E402
from users.models import User  # noqa: E402

# prefix: (clinic name, Mandatory 2FA on at the start)
CLINICS = {
    "river": ("Riverside Clinic", True),
    "harbour": ("Harbour Clinic", False),
    "codes": ("Hillside Clinic", False),
    "kbd": ("Keyboard Clinic", False),
    "narrow": ("Narrow Street Clinic", False),
    "wide": ("Wide Road Clinic", False),
    "keys": ("Keyfield Clinic", False),
    "keysreq": ("Keyrequired Clinic", True),
    "shared": ("Front Desk Clinic", False),
    "confirm": ("Confirmation Clinic", False),
    "idle": ("Quiet Clinic", False),
    "limit": ("Twelve Hour Clinic", False),
    "forced": ("Forced Set-up Clinic", True),
    "calm": ("Calm Lane Clinic", False),
    "errors": ("Error Page Clinic", False),
    "many": ("Many Members Clinic", False),
    "phone": ("Pocket Phone Clinic", False),
    "invite": ("Invitation Clinic", True),
    "forgot": ("Forgetful Clinic", False),
    "kbdm": ("Keyboard Members Clinic", False),
    "grace": ("Graceford Clinic", False),
    "ready": ("Readyville Clinic", False),
    "lost": ("Lostphone Clinic", False),
    "tz": ("Timezone Clinic", False),
}


def main(password: str) -> None:
    for prefix, (name, mandatory) in CLINICS.items():
        clinic = Clinic.objects.create(name=name, mandatory_2fa=mandatory)
        for role, first in ((User.Role.CLINIC_ADMIN, "Alex"), (User.Role.STAFF, "Robin")):
            username = f"{prefix}-{'admin' if role == User.Role.CLINIC_ADMIN else 'staff'}"
            user = User(
                username=username,
                first_name=first,
                last_name=prefix.capitalize(),
                email=f"{username}@example.com",
                clinic=clinic,
                role=role,
            )
            user.set_password(password)
            user.save()
    # A clinic with more users than one page holds, with long names and addresses, as real clinics have.
    many = Clinic.objects.get(name=CLINICS["many"][0])
    hashed = make_password(password)  # one hash for all: active members, not pending invitations
    User.objects.bulk_create(
        User(
            username=f"many-member-{n:02}",
            first_name=f"Josephine {n:02}",
            last_name="Montgomery-Whitfield",
            email=f"josephine.montgomery-whitfield.{n:02}@northside-practice.example.com",
            clinic=many,
            password=hashed,
            last_login=timezone.now() if n % 2 else None,
        )
        for n in range(60)
    )


if __name__ == "__main__":
    main(sys.argv[1])
