"""Django's database sessions, with cheaper key rotation and saves.

Django's cycle_key checks a new key is free, inserts a new row, then reads and
deletes the old one, and every save is BEGIN, UPDATE, COMMIT. Here the rotation only picks
the new key; the save at the end of the request renames the row and writes its
data (the old key stops working with that statement, as the response that
carries the new cookie is sent). The user's list of signed-in browsers
(users.UserSession) follows the rename in the same commit: on PostgreSQL in the
same statement, elsewhere in a second UPDATE inside one transaction. A save that
is not a rename is one UPDATE: a single statement needs no transaction of its
own. Measured in `make bench`, part 2 (README, Benchmark).
"""

import contextlib

from django.contrib.sessions.backends.base import VALID_KEY_CHARS, UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string


class SessionStore(DatabaseSessionStore):
    renamed_from: str | None = None
    key_retried = False

    def cycle_key(self):
        old_key = self.session_key
        if old_key is None:  # never saved: Django's way inserts the first row
            return super().cycle_key()
        data = self._session
        if self.renamed_from is None:  # rotated twice in one request: the row still has the first key
            self.renamed_from = old_key
        # No "is this key free?" query: the primary key refuses a duplicate when the row is renamed.
        self._session_key = get_random_string(32, VALID_KEY_CHARS)
        self._session_cache = data
        self.modified = True

    def load(self):
        """Django's load (the live row's data, else {} and no key) without the ORM: every request
        with a session cookie runs it, and building the ORM query cost more than running it."""
        using = router.db_for_read(self.model)
        connection = connections[using]
        table, key, data, expiry = self._quoted_names(connection)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {data} FROM {table} WHERE {key} = %s AND {expiry} > %s",
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:  # no such key, or expired: a fresh session, as Django's load gives
            self._session_key = None
            return {}
        return self.decode(row[0])

    def save(self, must_create=False):
        if self.session_key is None or must_create:
            return super().save(must_create=must_create)
        obj = self.create_model_instance(self._get_session())
        using = router.db_for_write(self.model, instance=obj)
        if self.renamed_from is None:
            try:
                updated = self._write(obj, using)
            except DatabaseError as exc:
                raise UpdateError from exc
            if not updated:  # the row was deleted meanwhile (signed out elsewhere): as Django does
                raise UpdateError
            return
        try:
            updated = self._rename(obj, using)
        except IntegrityError as exc:  # the same 165-bit key twice: not in practice; pick another, once
            if self.key_retried:
                raise UpdateError from exc
            self.key_retried = True
            self._session_key = get_random_string(32, VALID_KEY_CHARS)
            return self.save()
        except DatabaseError as exc:
            raise UpdateError from exc
        self.renamed_from = None
        if not updated:
            # The row was deleted while this request ran: the browser was signed out elsewhere or
            # ended from a browser list. Never bring it back (Django's cycle_key would insert it
            # again, signed in, with no browser-list entry): as for any save of a deleted
            # session, SessionMiddleware turns this into SessionInterrupted.
            raise UpdateError

    def _rename(self, obj, using) -> int:
        """Rename the row and write its data, and rename the user's browser-list entry with it, as
        one commit; how many session rows changed (0: the row was gone, and nothing changed).

        PostgreSQL: one statement (the entry's UPDATE in a WITH clause, run only when the row
        was renamed). Elsewhere: the two UPDATEs in one transaction.
        """
        from users.models import UserSession

        connection = connections[using]
        if connection.vendor != "postgresql":
            with transaction.atomic(using=using):
                updated = self._write(obj, using)
                if updated:
                    UserSession.objects.using(using).filter(session_key=self.renamed_from).update(session_key=self.session_key)
            return updated
        quote = connection.ops.quote_name
        sessions, key, data, expiry = self._quoted_names(connection)
        entries = quote(UserSession._meta.db_table)
        entry_key = quote(UserSession._meta.get_field("session_key").column)
        sql = (
            f"WITH renamed AS (UPDATE {sessions} SET {key} = %s, {data} = %s, {expiry} = %s WHERE {key} = %s RETURNING 1), "
            f"listed AS (UPDATE {entries} SET {entry_key} = %s WHERE {entry_key} = %s AND EXISTS (SELECT FROM renamed)) "
            "SELECT count(*) FROM renamed"
        )
        params = [self.session_key, obj.session_data, obj.expire_date, self.renamed_from, self.session_key, self.renamed_from]
        # One statement is atomic on its own; inside a caller's transaction a savepoint keeps a
        # refused key (IntegrityError, then another key) from aborting that transaction.
        savepoint = transaction.atomic(using=using) if connection.in_atomic_block else contextlib.nullcontext()
        with savepoint, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def _quoted_names(self, connection) -> tuple[str, str, str, str]:
        """The session table and its key, data and expiry columns, quoted for `connection`."""
        quote = connection.ops.quote_name
        meta = self.model._meta
        columns = (quote(meta.get_field(name).column) for name in ("session_key", "session_data", "expire_date"))
        return (quote(meta.db_table), *columns)

    def _write(self, obj, using) -> int:
        """The one UPDATE of the row (renamed when the key rotated); how many rows it changed."""
        return (
            self.model.objects.using(using)
            .filter(session_key=self.renamed_from or self.session_key)
            .update(session_key=self.session_key, session_data=obj.session_data, expire_date=obj.expire_date)
        )

    def delete(self, session_key=None):
        if session_key is None and self.renamed_from is not None:  # flushed after a rotation: the row has the old key
            super().delete(self.renamed_from)
            self.renamed_from = None
        super().delete(session_key)
