"""Django's database sessions, with the user's list of signed-in browsers kept in step.

Each signed-in browser has a UserSession row keyed by its session key, so the person and their
clinic admin can see and end it. Django changes the key at sign-in and at the second factor
(cycle_key); the entry follows it in the same transaction. A browser ended while its request ran
(its entry marked ended and its row deleted, from the browser list or by signing out) is never
brought back under a new key, as Django's cycle_key alone would: the new row goes again and the
save is refused, which SessionMiddleware turns into SessionInterrupted.

Every request with a session cookie loads its session, so load() reads a live row through a
cursor instead of building the ORM's query each time (0.5 ms of CPU in-process, half of a verified
request to a one-line page); a key with no live row goes Django's own way. A save of an existing
session is one UPDATE of its data and expiry, and a delete one DELETE: Django's go through a
model instance, its save() in a transaction, and for a delete a lookup first.
"""

import re

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connections, router, transaction
from django.utils import timezone

from .models import UserSession


# The keys Django makes: 32 characters of lowercase letters and digits (SessionBase._get_new_session_key).
SESSION_KEY_PATTERN = re.compile(r"[a-z0-9]{32}")


def is_session_key(value: str | None) -> bool:
    """True for a value shaped like a key Django made. Anything else in the cookie (a NUL byte,
    which PostgreSQL refuses, or a long or odd string) is treated as no session at all."""
    return value is not None and SESSION_KEY_PATTERN.fullmatch(value) is not None


class SessionStore(DatabaseSessionStore):
    ended_meanwhile = False

    def __init__(self, session_key=None):
        super().__init__(session_key if is_session_key(session_key) else None)

    def load(self):
        if self.session_key is None:
            return super().load()
        meta = self.model._meta
        key, data, expiry = (meta.get_field(name) for name in ("session_key", "session_data", "expire_date"))
        connection = connections[router.db_for_read(self.model)]
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT "{data.column}" FROM "{meta.db_table}" WHERE "{key.column}" = %s AND "{expiry.column}" > %s',
                [self.session_key, expiry.get_db_prep_value(timezone.now(), connection)],
            )
            row = cursor.fetchone()
        if row is None:  # unknown or expired: Django's load forgets the key, and the save makes a new one
            return super().load()
        return self.decode(row[0])

    def cycle_key(self):
        old_key = self.session_key
        if old_key is None:  # never saved: Django's way creates the first row
            return super().cycle_key()
        with transaction.atomic(using=router.db_for_write(self.model)):
            super().cycle_key()
            entries = UserSession.objects.filter(session_key=old_key)
            if not entries.filter(ended_at=None).update(session_key=self.session_key) and entries.exists():
                # The browser was ended (its entry marked, its row deleted) while this request ran:
                # the row Django just made for the new key goes too, and the save is refused.
                self.delete()
                self.ended_meanwhile = True

    async def acycle_key(self):
        return await sync_to_async(self.cycle_key)()

    def save(self, must_create=False):
        if self.ended_meanwhile:
            raise UpdateError
        if must_create or self.session_key is None:
            return super().save(must_create=must_create)
        updated = self.model.objects.filter(session_key=self.session_key).update(
            session_data=self.encode(dict(self.items())), expire_date=self.get_expiry_date()
        )
        if not updated:  # the row was deleted meanwhile (signed out elsewhere): as Django's save says it
            raise UpdateError

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is not None:
            self.model.objects.filter(session_key=session_key).delete()

    async def asave(self, must_create=False):
        if self.ended_meanwhile:
            raise UpdateError
        return await super().asave(must_create=must_create)
