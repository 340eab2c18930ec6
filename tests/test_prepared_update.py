"""clinic_auth.prepared.PreparedUpdate: the ORM's UPDATE compiled once, and the writes of every sign-in code through it."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import BigIntegerField, CharField, DateTimeField, IntegerField, Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic_auth.prepared import NotPreparable, PreparedUpdate
from clinic_auth.twofactor.models import EncryptedTOTPDevice, _fields_update
from users.models import User


@pytest.mark.django_db
def test_an_update_writes_what_the_orms_update_writes_with_the_orms_sql(user_factory):
    first, second = user_factory(), user_factory()
    built = []

    def build(user_id, now):
        built.append(user_id)
        return User.objects.filter(pk=user_id), {"last_login": now}

    stamp = PreparedUpdate(build, user_id=BigIntegerField(), now=DateTimeField())
    when = timezone.now().replace(microsecond=123456) - timedelta(days=3)
    with CaptureQueriesContext(connection) as ours:
        assert stamp(user_id=first.pk, now=when) == 1
    assert stamp(user_id=second.pk, now=when + timedelta(hours=1)) == 1
    assert stamp(user_id=second.pk + 1000, now=when) == 0  # no such row: nothing changed, as update() says
    assert User.objects.get(pk=first.pk).last_login == when
    assert User.objects.get(pk=second.pk).last_login == when + timedelta(hours=1)
    assert len(built) == 3 and first.pk not in built  # built to compile (a model, then two samples), never with real values
    with CaptureQueriesContext(connection) as orms:
        User.objects.filter(pk=first.pk).update(last_login=when)
    assert [q["sql"] for q in ours.captured_queries] == [q["sql"] for q in orms.captured_queries]


@pytest.mark.django_db
def test_a_failed_update_inside_a_transaction_marks_it_for_rollback_as_update_does(user_factory):
    first, second = user_factory(), user_factory()
    rename = PreparedUpdate(lambda user_id, username: (User.objects.filter(pk=user_id), {"username": username}),
                            user_id=BigIntegerField(), username=CharField())
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            rename(user_id=first.pk, username=second.username)  # taken
        assert transaction.get_rollback()  # the block rolls back as it ends, as after a failed update()
    assert rename(user_id=first.pk, username="renamed-once") == 1
    assert User.objects.get(pk=first.pk).username == "renamed-once"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "build, arguments, refusal",
    [
        (lambda clinic_name: (User.objects.filter(clinic__name=clinic_name), {"is_active": False}),
         {"clinic_name": DateTimeField()}, "other tables"),
        (lambda user_id, other: (User.objects.filter(pk=user_id), {"is_active": False}),
         {"user_id": BigIntegerField(), "other": IntegerField()}, "never used"),
        (lambda user_id: (User.objects.filter(pk=user_id)[:1], {"is_active": False}), {"user_id": BigIntegerField()}, "sliced"),
        (lambda user_id: (User.objects.filter(pk=user_id).annotate(n=Value(1)), {"is_active": False}),
         {"user_id": BigIntegerField()}, "annotations"),
    ],
)
def test_an_update_that_cannot_be_compiled_once_is_refused(build, arguments, refusal):
    with pytest.raises(NotPreparable, match=refusal):
        PreparedUpdate(build, **arguments)(**{name: None for name in arguments})


@pytest.mark.django_db
def test_a_code_checks_writes_equal_what_save_update_fields_writes(staff, enrol):
    device, _ = enrol(staff)
    device = EncryptedTOTPDevice.objects.get(pk=device.pk)
    device.throttle_increment(commit=False)
    device.throttle_increment(commit=False)
    device.last_t, device.drift = 123, -1
    expected = {name: getattr(device, name) for name in ("throttling_failure_count", "throttling_failure_timestamp", "last_t", "drift")}
    with CaptureQueriesContext(connection) as ours:
        device._write_fields(["drift", "last_t", *device.THROTTLE_FIELDS])  # any order: written in save()'s
    stored = EncryptedTOTPDevice.objects.get(pk=device.pk)
    assert {name: getattr(stored, name) for name in expected} == expected
    with CaptureQueriesContext(connection) as orms:
        device.save(update_fields=["last_t", "drift", *device.THROTTLE_FIELDS])
    assert [q["sql"] for q in ours.captured_queries] == [q["sql"] for q in orms.captured_queries]
    fields = tuple(f.name for f in EncryptedTOTPDevice._meta.concrete_fields if f.name in expected)
    assert _fields_update(EncryptedTOTPDevice, fields) is _fields_update(EncryptedTOTPDevice, fields)  # once per model and fields
    device.record_success("last_t", "drift")
    stored = EncryptedTOTPDevice.objects.get(pk=device.pk)
    assert (stored.throttling_failure_count, stored.throttling_failure_timestamp) == (0, None)
    assert stored.last_used_at == device.last_used_at is not None


@pytest.mark.django_db
def test_writing_a_device_deleted_meanwhile_fails_as_save_does(staff, enrol):
    device, _ = enrol(staff)
    EncryptedTOTPDevice.objects.filter(pk=device.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic():  # as in a code check
        try:
            device.record_failure()
        finally:
            assert transaction.get_rollback()  # the check's transaction is marked to roll back, as by save()


@pytest.mark.django_db
def test_a_field_name_the_model_does_not_have_is_refused_as_save_refuses_it(staff, enrol):
    device, _ = enrol(staff)
    device.throttle_increment(commit=False)
    with pytest.raises(ValueError, match="last_tt"):
        device._write_fields(["last_tt", *device.THROTTLE_FIELDS])
    with pytest.raises(ValueError, match="last_tt"):
        device.save(update_fields=["last_tt", *device.THROTTLE_FIELDS])  # Django refuses it too
    assert EncryptedTOTPDevice.objects.get(pk=device.pk).throttling_failure_count == 0  # nothing written
