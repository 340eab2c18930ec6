"""The one place that asks which authenticators a user has.

A primary method is one that can pass the second factor on its own: the
authenticator app, or a passkey or security key (django-otp-webauthn's
credential). Recovery codes are a fallback and never count as enrolled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import BooleanField, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.db import connections, router
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential

from clinic_auth import rows

from . import crypto
from .models import EncryptedTOTPDevice, RecoveryCode, RecoveryCodeDevice

PRIMARY_METHODS = (EncryptedTOTPDevice, WebAuthnCredential)


def confirmed_authenticators(user) -> list:
    """Every confirmed primary authenticator of the user, of any method."""
    return [device for model in PRIMARY_METHODS for device in model.objects.filter(user=user, confirmed=True)]


def is_enrolled(user) -> bool:
    """At least one confirmed primary authenticator; recovery codes alone never count (one query)."""
    return get_user_model().objects.filter(pk=user.pk).filter(enrolled_q()).exists()


def enrolled_q(user_ref: str = "pk") -> Q:
    """`is_enrolled` as a filter/annotation over a user queryset (one subquery per method)."""
    return reduce(
        or_, (Q(Exists(model.objects.filter(user=OuterRef(user_ref), confirmed=True))) for model in PRIMARY_METHODS)
    )


def with_methods(users: QuerySet) -> QuerySet:
    """Annotate a user queryset with has_app and key_count (for the Users list), in the same query.

    Scalar subqueries rather than EXISTS: PostgreSQL may run an EXISTS in the select list as one
    hash of every confirmed app of every clinic (500,000 rows at a million users) to show 50.
    """
    app = EncryptedTOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True).values(present=Value(True))[:1]
    return users.annotate(
        has_app=Coalesce(Subquery(app, output_field=BooleanField()), Value(False)),
        key_count=_count(WebAuthnCredential.objects.filter(user=OuterRef("pk"), confirmed=True), "user"),
    )


def keys_of(user) -> QuerySet:
    """The user's passkeys and security keys, oldest first (`user`: a user or a user's pk)."""
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def confirmed_totp_device(user) -> EncryptedTOTPDevice | None:
    return EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


@dataclass(frozen=True)
class SignInMethods:
    """What My Profile lists of a user's second factors."""

    app: EncryptedTOTPDevice | None
    keys: list[WebAuthnCredential]
    recovery_codes_left: int


def sign_in_methods(user) -> SignInMethods:
    """The authenticator app, the passkeys and security keys, and the recovery codes left, in two
    queries: the count rides on the app's row.

    My Profile is half of every staff member's page views, and building these queries through the
    ORM cost more CPU than running them, so they are written once here and read through a cursor
    (clinic_auth/rows.py).
    """
    using = router.db_for_read(EncryptedTOTPDevice)
    app, codes, code_sets = (model._meta.db_table for model in (EncryptedTOTPDevice, RecoveryCode, RecoveryCodeDevice))
    codes_left = (
        f'SELECT COUNT(*) FROM "{codes}" INNER JOIN "{code_sets}" ON "{codes}"."device_id" = "{code_sets}"."id" '
        f'WHERE "{code_sets}"."user_id" = %s AND "{code_sets}"."confirmed"'
    )
    ((device, left),) = rows.fetch(
        [EncryptedTOTPDevice],
        f'SELECT {rows.select_list(EncryptedTOTPDevice)}, ({codes_left}) FROM (SELECT 1 AS "one") AS "one" '
        f'LEFT OUTER JOIN "{app}" ON "{app}"."user_id" = %s AND "{app}"."confirmed" ORDER BY "{app}"."id" LIMIT 1',
        [user.pk, user.pk],
        using=using,
    )
    keys = WebAuthnCredential._meta.db_table
    found = rows.fetch(
        [WebAuthnCredential],
        f'SELECT {rows.select_list(WebAuthnCredential)} FROM "{keys}" WHERE "{keys}"."user_id" = %s AND "{keys}"."confirmed" '
        f'ORDER BY "{keys}"."created_at", "{keys}"."id"',
        [user.pk],
        using=using,
    )
    return SignInMethods(app=device, keys=[key for (key,) in found], recovery_codes_left=left)


@dataclass(frozen=True)
class MethodsAvailable:
    """Which ways the sign-in code page offers besides recovery codes."""

    has_app: bool
    has_keys: bool


def methods_available(user) -> MethodsAvailable:
    """One query, through a cursor: a code-guessing attacker has this page rendered many times a second."""
    app, keys = EncryptedTOTPDevice._meta.db_table, WebAuthnCredential._meta.db_table
    ((has_app, has_keys),) = rows.fetch(
        [],
        f'SELECT EXISTS (SELECT 1 FROM "{app}" WHERE "user_id" = %s AND "confirmed"), '
        f'EXISTS (SELECT 1 FROM "{keys}" WHERE "user_id" = %s AND "confirmed")',
        [user.pk, user.pk],
        using=router.db_for_read(EncryptedTOTPDevice),
    )
    return MethodsAvailable(has_app=bool(has_app), has_keys=bool(has_keys))  # SQLite gives 0 or 1


def confirmed_device_for_update(model, user, *, lock_user: bool = False):
    """The user's confirmed device of this kind, its row locked until the transaction ends; with
    `lock_user`, the user's row too, locked first, in the order every 2FA change takes them (user,
    then devices), in the same statement (`FOR UPDATE OF` locks in the order it names the tables).

    Every sign-in code runs it, so through a cursor (clinic_auth/rows.py): the ORM's query with
    select_related, only() and select_for_update(of=...) cost more CPU to build than the rest of
    the check. Where the database has no row locks (SQLite), its transaction holds the whole
    database already (BEGIN IMMEDIATE).
    """
    using = router.db_for_write(model)
    features = connections[using].features
    devices, users = model._meta.db_table, get_user_model()._meta.db_table
    locks = ""
    if features.has_select_for_update:
        locks = f' FOR UPDATE OF "{users}", "{devices}"' if lock_user and features.has_select_for_update_of else " FOR UPDATE"
    user_key = model._meta.get_field("user").column
    sql = (
        f'SELECT {rows.select_list(model)} FROM "{devices}" INNER JOIN "{users}" '
        f'ON "{devices}"."{user_key}" = "{users}"."{get_user_model()._meta.pk.column}" '
        f'WHERE "{devices}"."{user_key}" = %s AND "{devices}"."{model._meta.get_field("confirmed").column}" '
        f'ORDER BY "{devices}"."{model._meta.pk.column}" LIMIT 1{locks}'
    )
    found = rows.fetch([model], sql, [user.pk], using=using)
    return found[0][0] if found else None


def undecryptable_totp_owners() -> tuple[int, list[str]]:
    """(how many authenticator apps are stored, the usernames of those whose secret does not decrypt
    with TOTP_ENCRYPTION_KEYS): what `check --deploy` reports and `reset_2fa --undecryptable` resets."""
    cipher = crypto.cipher()
    total, owners = 0, set()
    stored = EncryptedTOTPDevice.objects.values_list("user__username", "encrypted_key").iterator(chunk_size=2000)
    for username, token in stored:
        total += 1
        try:
            cipher.decrypt(token.encode())
        except InvalidToken:
            owners.add(username)
    return total, sorted(owners)


def recovery_device(user) -> RecoveryCodeDevice | None:
    return RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()


def recovery_codes_left(user) -> int:
    return RecoveryCode.objects.filter(device__user=user, device__confirmed=True).count()


def setup_is_stale(device: EncryptedTOTPDevice, now: datetime) -> bool:
    return device.created_at is None or now - device.created_at > timedelta(seconds=settings.CLINICAUTH_SETUP_TIMEOUT)


def live_setup_device(*, user, device_id: int | None) -> EncryptedTOTPDevice | None:
    """The unconfirmed authenticator one set-up session started, while it is still live."""
    if not isinstance(device_id, int):
        return None
    device = EncryptedTOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
    if device is None or setup_is_stale(device, timezone.now()):
        return None
    return device


@dataclass(frozen=True)
class TwoFactorState:
    """Everything a reset would remove, as an admin or operator needs to hear it."""

    enrolled: bool
    has_app: bool
    keys: int
    setups_in_progress: int
    setup_failures: int
    recovery_codes_left: int

    @property
    def setup_locked(self) -> bool:
        return self.setup_failures >= settings.CLINICAUTH_CODE_LOCKOUT_FAILURES

    @property
    def anything_to_reset(self) -> bool:
        return self.enrolled or self.setups_in_progress > 0 or self.setup_failures > 0 or self.recovery_codes_left > 0

    def describe(self) -> str:
        """One line for the audit log and the operator's terminal."""
        parts = []
        if self.has_app:
            parts.append("authenticator app")
        if self.keys:
            parts.append(f"{self.keys} passkey{'s' if self.keys != 1 else ''} or security key{'s' if self.keys != 1 else ''}")
        if self.setups_in_progress or self.setup_failures:
            text = "set-up in progress"
            if self.setup_locked:
                text += f", locked after {self.setup_failures} wrong codes"
            elif self.setup_failures:
                text += f", {self.setup_failures} wrong codes"
            parts.append(text)
        if self.recovery_codes_left:
            parts.append(f"{self.recovery_codes_left} recovery codes")
        return "; ".join(parts) or "nothing"


def twofa_state(user) -> TwoFactorState:
    now = timezone.now()
    apps = list(EncryptedTOTPDevice.objects.filter(user=user))
    pending = [device for device in apps if not device.confirmed]
    has_app = any(device.confirmed for device in apps)
    counts = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            keys=_count(WebAuthnCredential.objects.filter(user=OuterRef("pk")), "user"),
            codes=_count(RecoveryCode.objects.filter(device__user=OuterRef("pk")), "device__user"),
        )
        .values("keys", "codes")
        .get()
    )
    return TwoFactorState(
        enrolled=has_app or counts["keys"] > 0,
        has_app=has_app,
        keys=counts["keys"],
        setups_in_progress=sum(1 for device in pending if not setup_is_stale(device, now)),
        # Failures carry over to the next set-up, so a stale set-up's count still matters.
        setup_failures=max((device.throttling_failure_count for device in pending), default=0),
        recovery_codes_left=counts["codes"],
    )


def _count(queryset: QuerySet, user_field: str):
    """A scalar subquery counting one user's rows, so several counts share one query."""
    counted = queryset.order_by().values(user_field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
