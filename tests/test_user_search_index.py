"""The Users search reads one column that one trigram index covers.

At a million users the bench shows PostgreSQL ANDing the clinic's index with this one
(bench/results/plan-1000000-users-search.txt); these tests keep the search's SQL and the
index's expression from drifting apart, which would silently bring back a scan of the clinic.
"""

from django.db import connection
from django.db.models import Value
from django.db.models.functions import Upper

from users import selectors
from users.models import User


def test_each_search_word_is_one_condition_on_the_search_column(clinic):
    sql, params = selectors.matching_users(clinic=clinic, query="marta LOP").query.sql_with_params()

    where = sql.split(" WHERE ", 1)[1].split(" ORDER BY ", 1)[0]
    assert where.count('"users_user"."search_text"') == 2  # one per word, not one per field
    for field in ("username", "first_name", "last_name", "email"):
        assert f'"users_user"."{field}"' not in where
    assert any("marta" in str(p) for p in params) and any("LOP" in str(p) for p in params)
    assert 'UPPER("users_user"."search_text' not in where  # stored upper-cased: no UPPER() per row


def test_postgresql_can_answer_the_search_from_the_trigram_index(db):
    if connection.vendor != "postgresql":
        # SQLite has no pg_trgm: the column is there, the index is not (users/migrations/0007, 0008).
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%trgm%'")
            assert cursor.fetchall() == []
        return
    # matching_users' lookup, without the clinic (whose own index would answer a tiny test table first).
    sql, params = User.objects.filter(search_text__contains=Upper(Value("kowal"))).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny test table would be scanned otherwise
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "users_user_search_trgm" in plan, plan


def test_search_matches_any_case_of_the_word_in_any_field(clinic, user_factory):
    joy = user_factory(username="nurse.joy", first_name="Joy", last_name="Nurse", email="JOY@Example.com")
    user_factory(username="ben", first_name="Ben", last_name="Zed", email="ben@example.com")

    for query in ("joy", "JOY", "nUrSe", "example.com joy", "nurse.j"):
        assert [u.pk for u in selectors.matching_users(clinic=clinic, query=query)] == [joy.pk], query
    assert list(selectors.matching_users(clinic=clinic, query="joy zed")) == []
    assert list(selectors.matching_users(clinic=clinic, query="50%")) == []  # a wildcard is matched as itself
