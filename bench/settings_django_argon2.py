"""Part 4's "before": this app with Django's default Argon2 parameters (100 MiB, 2 passes, 8 lanes),
as every password check cost before ClinicArgon2PasswordHasher; everything else clinic_auth.settings."""

from clinic_auth.settings import *  # noqa: F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
