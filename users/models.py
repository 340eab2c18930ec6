import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Value
from django.db.models.functions import Concat, Upper
from django.utils.crypto import salted_hmac

from clinic_auth.passwords import password_check_slot
from clinic_auth.twofactor.verification import OTPVerifiedUserMixin


def new_session_nonce() -> str:
    return secrets.token_hex(16)


class User(OTPVerifiedUserMixin, AbstractUser):
    class Role(models.TextChoices):
        CLINIC_ADMIN = "admin", "Clinic admin"
        STAFF = "staff", "Staff"

    clinic = models.ForeignKey(
        "clinics.Clinic",
        on_delete=models.PROTECT,
        related_name="users",
        null=True,
        blank=True,
        help_text="Operators (superusers) may have no clinic; every member of staff has one.",
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    # Bumped whenever this user's devices or their clinic's 2FA policy change, so
    # the middleware can trust what it cached in the session without a query.
    twofa_stamp = models.PositiveIntegerField(default=0, editable=False)
    # Rotating it ends every session of the user (see get_session_auth_hash).
    session_nonce = models.CharField(max_length=32, default=new_session_nonce, editable=False)
    # Always devices.is_enrolled(user), kept by users.receivers on every change of a primary
    # authenticator, so the Users list can count, filter and sort by it along an index.
    twofa_enrolled = models.BooleanField(default=False, editable=False)
    # What the Users search looks in, as one column so one trigram index serves it
    # (users/migrations/0007_user_search_text, 0008_search_text_upper_case). Space-separated: a
    # search word has no spaces, so it never matches across two fields. Stored in upper case, so
    # the search compares it as it is (a case-insensitive match would upper-case every row again).
    search_text = models.GeneratedField(
        expression=Upper(
            Concat("username", Value(" "), "first_name", Value(" "), "last_name", Value(" "), "email", output_field=models.TextField())
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["last_name", "first_name", "username"]
        indexes = [
            # The name sorts, in full: with username in the index a deep page's key is found by
            # walking the index, not by sorting the clinic.
            models.Index(fields=["clinic", "last_name", "first_name", "username"], name="user_clinic_fullname_idx"),
            # The 2FA-status filter and both 2FA sorts: one clinic, one status, in name order.
            models.Index(
                fields=["clinic", "twofa_enrolled", "last_name", "first_name", "username"], name="user_clinic_2fa_name_idx"
            ),
            # The Users summary's counts of active and enrolled members, read from the index alone.
            models.Index(fields=["clinic", "is_active", "twofa_enrolled"], name="user_clinic_active_2fa_idx"),
        ]

    def save(self, *args, **kwargs):
        # Only the receivers write twofa_enrolled (by UPDATE). A full save of an instance read
        # before a device changed would otherwise put the old value back.
        if not self._state.adding and kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and not field.generated and field.name != "twofa_enrolled"
            ]
        super().save(*args, **kwargs)

    # Every password hashed or checked, the backend's decoy check for an unknown username included,
    # goes through these, so each worker runs a bounded number at once (clinic_auth/passwords.py).
    def check_password(self, raw_password):
        with password_check_slot():
            return super().check_password(raw_password)

    def set_password(self, raw_password):
        with password_check_slot():
            super().set_password(raw_password)

    def rotate_session_nonce(self) -> None:
        """Ends every session of this user once saved (see get_session_auth_hash)."""
        self.session_nonce = new_session_nonce()

    @property
    def is_clinic_admin(self) -> bool:
        return self.role == self.Role.CLINIC_ADMIN and self.clinic_id is not None

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    def get_session_auth_hash(self) -> str:
        # Django ends a session whose stored hash no longer matches; mixing in the
        # nonce lets us end all of a user's sessions without touching the password.
        return self._session_hash_with(secret=None)

    def get_session_auth_fallback_hash(self):
        for fallback_secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash_with(secret=fallback_secret)

    def _session_hash_with(self, *, secret: str | None) -> str:
        return salted_hmac(
            "clinicauth.users.User.session_auth_hash",
            f"{self.password}:{self.session_nonce}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()


class LoginThrottle(models.Model):
    """Failed password attempts for one key ("acct-ip:<user>|<ip>" or "ip:<ip>").

    Kept in the database so every app server process sees the same counts.
    """

    key = models.CharField(max_length=255, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.failures}"


class UserSession(models.Model):
    """One browser a user signed in with, so they and their clinic admin can see and end it.

    The session's own row (django_session) stays the truth: whether it is still
    alive, and when it was last active, is read from it. This row adds what the
    session table cannot answer: whose it is, from where, with which browser, and
    its key as it rotates (clinic_auth/sessions.py renames both together).
    """

    class EndReason(models.TextChoices):
        SIGNED_OUT = "signed_out", "Signed out"
        ENDED_BY_USER = "ended_by_user", "Signed out from another browser"
        ENDED_BY_ADMIN = "ended_by_admin", "Signed out by a clinic administrator"
        SWITCHED_USER = "switched_user", "Someone else signed in on this browser"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signed_in_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    signed_in_at = models.DateTimeField(auto_now_add=True)
    # When the sign-in completed (the second factor, or the password where none applies); empty
    # while the browser has given the password but not yet its code.
    completed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "ended_at"], name="usersession_user_ended_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.session_key[:6]}…"


class Invitation(models.Model):
    """A single-use link that lets an invited member set their first password.

    Only a SHA-256 hash of the link's random token is stored, so a database dump
    yields no working link. A link works while it is neither accepted, revoked
    nor expired; sending it again revokes the old one.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Invitation #{self.pk} for user #{self.user_id}"

    def is_usable(self, *, now) -> bool:
        return self.accepted_at is None and self.revoked_at is None and now < self.expires_at
