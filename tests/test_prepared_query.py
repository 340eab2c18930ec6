"""clinic_auth.prepared.PreparedQuery: the ORM's SQL compiled once, the ORM's rows every time."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db.models import BigIntegerField, CharField, DateTimeField, IntegerField, Value
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential

from clinic_auth.prepared import NotPreparable, PreparedQuery
from clinic_auth.twofactor import devices
from clinic_auth.twofactor.models import EncryptedTOTPDevice
from users.models import User, UserSession


def field_values(instance):
    return {f.attname: (type(getattr(instance, f.attname)), getattr(instance, f.attname)) for f in instance._meta.concrete_fields}


@pytest.mark.django_db
def test_sign_in_methods_equal_the_orms_rows_field_for_field_in_two_queries(staff, enrol, django_assert_num_queries):
    device, codes = enrol(staff)
    for n in range(2):
        WebAuthnCredential.objects.create(user=staff, name=f"Key {n}", confirmed=True, credential_id=bytes([n]) * 16, public_key=b"k",
                                          sign_count=0, aaguid="00000000-0000-0000-0000-000000000000")
    with django_assert_num_queries(2):
        methods = devices.sign_in_methods(staff)
    orm_app = EncryptedTOTPDevice.objects.get(pk=device.pk)
    assert field_values(methods.app) == field_values(orm_app)
    assert methods.recovery_codes_left == len(codes) == 10
    assert [field_values(k) for k in methods.keys] == [field_values(k) for k in devices.keys_of(staff)]
    assert [k.name for k in methods.keys] == ["Key 0", "Key 1"]
    assert not methods.app._state.adding and methods.app._state.db == "default"
    methods.app.name = "Renamed"
    methods.app.save()  # a row the ORM can save back, as one it loaded itself
    assert EncryptedTOTPDevice.objects.get(pk=device.pk).name == "Renamed"


@pytest.mark.django_db
def test_each_call_runs_with_its_own_values_and_the_queryset_is_built_only_to_compile(user_factory):
    first, second = user_factory(), user_factory()
    built = []

    def build(user_id):
        built.append(user_id)
        return User.objects.filter(pk=user_id)

    by_pk = PreparedQuery(build, user_id=BigIntegerField())
    assert [u.username for u in by_pk(user_id=first.pk)] == [first.username]
    assert [u.username for u in by_pk(user_id=second.pk)] == [second.username]
    assert by_pk(user_id=second.pk + 1000) == []
    assert len(built) == 2  # the two samples of the one compilation, never a real value
    assert first.pk not in built and second.pk not in built


@pytest.mark.django_db
def test_a_datetime_argument_is_prepared_as_the_orm_prepares_it(staff):
    now = timezone.now()
    for key, expires in (("live-session-key", now + timedelta(hours=1)), ("dead-session-key", now - timedelta(seconds=1))):
        Session.objects.create(session_key=key, session_data="x", expire_date=expires)
        UserSession.objects.create(user=staff, session_key=key)
    live = PreparedQuery(
        lambda user_id, now: Session.objects.filter(
            session_key__in=UserSession.objects.filter(user_id=user_id).values("session_key"), expire_date__gt=now
        ),
        user_id=BigIntegerField(),
        now=DateTimeField(),
    )
    assert [s.session_key for s in live(user_id=staff.pk, now=now)] == ["live-session-key"]
    assert live(user_id=staff.pk, now=now + timedelta(hours=2)) == []
    assert sorted(s.session_key for s in live(user_id=staff.pk, now=now - timedelta(hours=1))) == ["dead-session-key", "live-session-key"]


@pytest.mark.django_db
def test_annotations_come_back_as_attributes(staff):

    named = PreparedQuery(lambda username: User.objects.filter(username=username).annotate(label=Value("hello")),
                          username=CharField())
    (user,) = named(username=staff.username)
    assert user.pk == staff.pk and user.label == "hello"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "build, arguments, refusal",
    [
        # An IN list as long as the value's last digit: its SQL has that many placeholders.
        (lambda n: User.objects.filter(pk__in=range(abs(n) % 10 + 1)), {"n": IntegerField()}, "SQL changes"),
        (lambda user_id, other: User.objects.filter(pk=user_id), {"user_id": BigIntegerField(), "other": BigIntegerField()},
         "never used"),
        (lambda user_id: User.objects.select_related("clinic").filter(pk=user_id), {"user_id": BigIntegerField()}, "select_related"),
    ],
    ids=["sql-depends-on-value", "unused-argument", "select-related"],
)
def test_a_queryset_that_cannot_be_compiled_once_is_refused(build, arguments, refusal):
    query = PreparedQuery(build, **arguments)
    with pytest.raises(NotPreparable, match=refusal):
        query(**{name: 1 for name in arguments})


@pytest.mark.django_db
def test_wrong_argument_names_are_a_type_error(staff):
    by_pk = PreparedQuery(lambda user_id: User.objects.filter(pk=user_id), user_id=BigIntegerField())
    with pytest.raises(TypeError):
        by_pk(pk=staff.pk)


@pytest.mark.django_db
def test_a_settings_change_forgets_the_compiled_sql(staff, settings):
    by_pk = PreparedQuery(lambda user_id: User.objects.filter(pk=user_id), user_id=BigIntegerField())
    by_pk(user_id=staff.pk)
    assert by_pk._compiled
    settings.USE_TZ = settings.USE_TZ  # any override sends setting_changed
    assert not by_pk._compiled
    assert [u.pk for u in by_pk(user_id=staff.pk)] == [staff.pk]


@pytest.mark.django_db
def test_methods_available_on_the_code_page_in_one_query(user_factory, enrol, django_assert_num_queries):
    nothing, app_only, keys_only = user_factory(), user_factory(), user_factory()
    enrol(app_only)
    WebAuthnCredential.objects.create(user=keys_only, name="Key", confirmed=True, credential_id=b"\x07" * 16, public_key=b"k",
                                      sign_count=0, aaguid="00000000-0000-0000-0000-000000000000")
    WebAuthnCredential.objects.create(user=nothing, name="Unconfirmed", confirmed=False, credential_id=b"\x08" * 16,
                                      public_key=b"k", sign_count=0, aaguid="00000000-0000-0000-0000-000000000000")
    expected = {nothing: (False, False), app_only: (True, False), keys_only: (False, True)}
    for user, (has_app, has_keys) in expected.items():
        with django_assert_num_queries(1):
            methods = devices.methods_available(user)
        assert (methods.has_app, methods.has_keys) == (has_app, has_keys)
        assert methods.has_app is has_app and methods.has_keys is has_keys


@pytest.mark.django_db(transaction=True)
def test_a_locking_query_outside_a_transaction_is_refused_as_the_orm_refuses_it(staff):
    from django.db import connection, transaction
    from django.db.transaction import TransactionManagementError

    locked = PreparedQuery(lambda user_id: User.objects.select_for_update().filter(pk=user_id), user_id=BigIntegerField())

    def refused(run) -> bool:
        try:
            run()
        except TransactionManagementError:
            return True
        return False

    with transaction.atomic():
        assert [u.pk for u in locked(user_id=staff.pk)] == [staff.pk]
    orm_refuses = refused(lambda: list(User.objects.select_for_update().filter(pk=staff.pk)))
    assert orm_refuses == connection.features.has_select_for_update  # PostgreSQL refuses; SQLite has no row locks
    assert refused(lambda: locked(user_id=staff.pk)) == orm_refuses


@pytest.mark.django_db
@pytest.mark.parametrize(
    "build, arguments, refusal",
    [
        # The day of a datetime: a parameter that changes with `now` but is not `now`.
        (lambda now: User.objects.filter(date_joined__date=now.date()), {"now": DateTimeField()}, "not its value as given"),
        (lambda user_id: User.objects.filter(pk=user_id - 2), {"user_id": BigIntegerField()}, "not its value as given"),
        (lambda name: User.objects.filter(username=name.lower()), {"name": CharField()}, "not its value as given"),
        (lambda user_id: User.objects.filter(pk=user_id).values("pk"), {"user_id": BigIntegerField()}, "values"),
        (lambda user_id: User.objects.filter(pk=user_id).prefetch_related("signed_in_sessions"), {"user_id": BigIntegerField()},
         "prefetch_related"),
        (lambda user_id: User.objects.none().filter(pk=user_id), {"user_id": BigIntegerField()}, "empty"),
        (lambda user_id: User.objects.filter(pk=user_id).select_related("clinic"), {"user_id": BigIntegerField()},
         "only to lock a related row"),
        (lambda user_id: EncryptedTOTPDevice.objects.filter(user_id=user_id).select_related("user").only(
            *[f.name for f in EncryptedTOTPDevice._meta.concrete_fields], "user__id", "user__username"),
         {"user_id": BigIntegerField()}, "only to lock a related row"),
    ],
    ids=["date-of-a-datetime", "offset", "lower-cased", "values", "prefetch", "none", "select-related",
         "select-related-beyond-the-key"],
)
def test_a_queryset_raw_would_answer_differently_is_refused(build, arguments, refusal):
    query = PreparedQuery(build, **arguments)
    samples = {"now": timezone.now(), "user_id": 1, "name": "Someone"}
    with pytest.raises(NotPreparable, match=refusal):
        query(**{name: samples[name] for name in arguments})


@pytest.mark.django_db
def test_model_reader_makes_rows_as_raw_does_and_is_built_once_per_connection(staff, settings):
    from django.db import connections

    from clinic_auth import prepared

    connection = connections["default"]
    columns = ("id", "username", "last_login", "is_active", "twofa_enrolled", "extra_column")
    with connection.cursor() as cursor:
        cursor.execute('SELECT "id", "username", "last_login", "is_active", "twofa_enrolled", 42 AS "extra_column" '
                       'FROM "users_user" WHERE "id" = %s', [staff.pk])
        row = cursor.fetchone()
    read = prepared.model_reader(connection, User, columns)
    user = read(row)
    orm = User.objects.raw('SELECT "id", "username", "last_login", "is_active", "twofa_enrolled", 42 AS "extra_column" '
                           'FROM "users_user" WHERE "id" = %s', [staff.pk])[0]
    for name in ("id", "username", "last_login", "is_active", "twofa_enrolled", "extra_column"):
        assert (type(getattr(user, name)), getattr(user, name)) == (type(getattr(orm, name)), getattr(orm, name))
    assert user.get_deferred_fields() == orm.get_deferred_fields() and "password" in user.get_deferred_fields()
    assert prepared.model_reader(connection, User, columns) is read  # built once
    assert prepared.model_reader(connection, User, columns[:2]) is not read
    settings.USE_TZ = settings.USE_TZ  # any settings change forgets them (converters depend on settings)
    assert prepared.model_reader(connection, User, columns) is not read
    with pytest.raises(NotPreparable, match="primary key"):
        prepared.model_reader(connection, User, ("username",))


@pytest.mark.django_db(transaction=True)
def test_a_related_row_joined_only_to_be_locked_reads_as_the_model_alone(staff, enrol):
    from django.db import transaction

    device, _ = enrol(staff)
    fields = [f.name for f in EncryptedTOTPDevice._meta.concrete_fields]
    locking = PreparedQuery(
        lambda user_id: EncryptedTOTPDevice.objects.filter(user_id=user_id).select_related("user").only(*fields, "user__id")
        .select_for_update(of=("user", "self")),
        user_id=BigIntegerField(),
    )
    with transaction.atomic():
        (read,) = locking(user_id=staff.pk)
    assert field_values(read) == field_values(EncryptedTOTPDevice.objects.get(pk=device.pk))
    assert (read.pk, read.user_id) == (device.pk, staff.pk)  # "id" twice: the device's own comes first
    assert not hasattr(read, "username")


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_code_locks_the_user_before_the_device_in_one_statement(staff, enrol):
    """The order every 2FA change takes the rows (user, then devices): while the device's row is held
    elsewhere, the code check waits on it already holding the user's row, never the other way round."""
    import threading
    import time

    import psycopg
    from django.db import connection, connections, transaction

    from clinic_auth.twofactor import devices

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite's BEGIN IMMEDIATE locks the whole database)")
    device, _ = enrol(staff)
    dsn = connection.get_connection_params()
    dsn.pop("cursor_factory", None), dsn.pop("context", None), dsn.pop("prepare_threshold", None)
    holder = psycopg.connect(**dsn)
    prober = psycopg.connect(**dsn, autocommit=True)
    holder.execute("SELECT id FROM twofactor_encryptedtotpdevice WHERE id = %s FOR UPDATE", [device.pk])
    found = []

    def check():
        try:
            with transaction.atomic():
                found.append(devices.confirmed_device_for_update(EncryptedTOTPDevice, staff, lock_user=True))
        finally:
            connections.close_all()

    waiting = threading.Thread(target=check)
    waiting.start()
    try:
        deadline = time.monotonic() + 20
        while not prober.execute(  # until the check is waiting for the device's row (a busy machine may take a while)
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()[0]:
            assert time.monotonic() < deadline and waiting.is_alive(), "the check never waited for the device's row"
            time.sleep(0.02)
        with pytest.raises(psycopg.errors.LockNotAvailable):
            prober.execute("SELECT id FROM users_user WHERE id = %s FOR UPDATE NOWAIT", [staff.pk])
    finally:
        holder.rollback()
        waiting.join(10)
        holder.close(), prober.close()
    assert [d.pk for d in found] == [device.pk]
