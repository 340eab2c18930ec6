from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connections, router

from clinic_auth.prepared import model_reader


class ClinicUserBackend(ModelBackend):
    """Django's ModelBackend, except that the signed-in user is loaded with their clinic in one
    query, and without building that query through the ORM on every request.

    Every page shows the clinic's name and the 2FA rules read its policy, so the clinic comes in
    the same query (one query saved per request). And every signed-in request runs this: through
    the ORM, `select_related("clinic").get(pk=...)` took 0.64-0.84 ms of CPU, nearly all of it
    building the query; this takes 0.18-0.27 ms, of a Home page view's 4 ms (issue 16, measured
    in-process on a 2-core machine). The SELECT is made from the models' own fields, and each half
    of the row becomes its model as Manager.raw() would make it (clinic_auth.prepared.model_reader).
    """

    def get_user(self, user_id):
        User = get_user_model()
        user = _user_with_clinic(User, user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


def _user_with_clinic(User, pk):
    clinic_fk = User._meta.get_field("clinic")
    Clinic = clinic_fk.related_model
    using = router.db_for_read(User)
    connection = connections[using]
    quote = connection.ops.quote_name
    user_table, clinic_table = quote(User._meta.db_table), quote(Clinic._meta.db_table)
    user_fields, clinic_fields = User._meta.concrete_fields, Clinic._meta.concrete_fields
    columns = [f"{user_table}.{quote(f.column)}" for f in user_fields] + [f"{clinic_table}.{quote(f.column)}" for f in clinic_fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM {user_table} LEFT OUTER JOIN {clinic_table}"
            f" ON ({user_table}.{quote(clinic_fk.column)} = {clinic_table}.{quote(clinic_fk.target_field.column)})"
            f" WHERE {user_table}.{quote(User._meta.pk.column)} = %s",
            [User._meta.pk.get_db_prep_value(pk, connection)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    user_row, clinic_row = row[: len(user_fields)], row[len(user_fields):]
    user = model_reader(connection, User, tuple(f.column for f in user_fields))(user_row)
    # The related object cached as select_related leaves it: None when the join found no clinic row.
    joined = clinic_row[clinic_fields.index(Clinic._meta.pk)] is not None
    clinic = model_reader(connection, Clinic, tuple(f.column for f in clinic_fields))(clinic_row) if joined else None
    clinic_fk.set_cached_value(user, clinic)
    return user
