"""Django's database sessions, with cheaper key rotation and saves.

Django's cycle_key checks a new key is free, inserts a new row, then reads and
deletes the old one, and every save is BEGIN, UPDATE, COMMIT. Here the rotation only picks
the new key; the save at the end of the request renames the row and writes its
data in one UPDATE (the old key stops working with that statement, as the
response that carries the new cookie is sent). The user's list of signed-in
browsers (users.UserSession) follows the rename in a second UPDATE. A save that
is not a rename is one UPDATE too: a single statement needs no transaction of
its own. Measured in `make bench`, part 2 (README, Benchmark).
"""

from django.contrib.sessions.backends.base import VALID_KEY_CHARS, UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import DatabaseError, IntegrityError, router
from django.utils.crypto import get_random_string


class SessionStore(DatabaseSessionStore):
    renamed_from: str | None = None

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

    def save(self, must_create=False):
        if self.session_key is None or must_create:
            return super().save(must_create=must_create)
        obj = self.create_model_instance(self._get_session())
        using = router.db_for_write(self.model, instance=obj)
        rows = self.model.objects.using(using)
        try:
            updated = rows.filter(session_key=self.renamed_from or self.session_key).update(
                session_key=self.session_key, session_data=obj.session_data, expire_date=obj.expire_date
            )
        except IntegrityError:  # the same 165-bit key twice: not in practice; pick another
            self._session_key = get_random_string(32, VALID_KEY_CHARS)
            return self.save()
        except DatabaseError as exc:
            raise UpdateError from exc
        if not updated:
            if self.renamed_from is None:  # the row was deleted meanwhile (signed out elsewhere): as Django does
                raise UpdateError
            # Rotated after the row was deleted (e.g. clearsessions): a new row with the data, as
            # Django's cycle_key makes.
            self.renamed_from = None
            self.create()
            return
        if self.renamed_from is not None:
            from users.models import UserSession

            UserSession.objects.using(using).filter(session_key=self.renamed_from).update(session_key=self.session_key)
            self.renamed_from = None

    def delete(self, session_key=None):
        if session_key is None and self.renamed_from is not None:  # flushed after a rotation: the row has the old key
            super().delete(self.renamed_from)
            self.renamed_from = None
        super().delete(session_key)
