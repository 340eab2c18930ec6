"""The Users search column stored in upper case.

The search used to compare UPPER(search_text) with the upper-cased word. When PostgreSQL reads
the clinic's rows and filters them (at a million users it does so for some ANALYZE samples), the
UPPER() of 10,000 rows took 9-11 ms of each of the page's two queries; comparing a column already
in upper case takes 4. The trigram index moves to the column itself.

Changing a generated column's expression means dropping it and adding it again, which rewrites
the users table: seconds at a million users (README, Production).
"""

from django.db import migrations, models
from django.db.models.functions import Concat, Upper

from ._postgresql import run_on_postgresql

OLD_INDEX_SQL = (
    'CREATE INDEX IF NOT EXISTS "users_user_search_trgm" ON "users_user" '
    'USING gin ((UPPER("search_text"::text)) gin_trgm_ops)'
)
CREATE_SQL = ['CREATE INDEX IF NOT EXISTS "users_user_search_trgm" ON "users_user" USING gin ("search_text" gin_trgm_ops)']
DROP_SQL = ['DROP INDEX IF EXISTS "users_user_search_trgm"']


def _search_text(expression):
    return models.GeneratedField(db_persist=True, expression=expression, output_field=models.TextField())


FIELDS = ("username", models.Value(" "), "first_name", models.Value(" "), "last_name", models.Value(" "), "email")


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0007_user_search_text"),
    ]

    operations = [
        migrations.RunPython(run_on_postgresql(DROP_SQL), run_on_postgresql([OLD_INDEX_SQL])),
        migrations.RemoveField(model_name="user", name="search_text"),
        migrations.AddField(
            model_name="user",
            name="search_text",
            field=_search_text(Upper(Concat(*FIELDS, output_field=models.TextField()))),
        ),
        migrations.RunPython(run_on_postgresql(CREATE_SQL), run_on_postgresql(DROP_SQL)),
    ]
