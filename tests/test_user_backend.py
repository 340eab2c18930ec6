"""users.backends.ClinicUserBackend: the signed-in user and their clinic, as the ORM loads them, in one query."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from users.backends import ClinicUserBackend


def field_values(instance):
    return {f.attname: (type(getattr(instance, f.attname)), getattr(instance, f.attname)) for f in instance._meta.concrete_fields}


@pytest.mark.django_db
def test_the_user_and_clinic_equal_the_orms_field_for_field_and_type_for_type(staff, clinic, django_assert_num_queries):
    staff.last_login = timezone.now()
    staff.save()
    clinic.mandatory_2fa = True
    clinic.mandatory_from = timezone.localdate()
    clinic.save()
    with django_assert_num_queries(1):
        loaded = ClinicUserBackend().get_user(str(staff.pk))  # the session keeps the pk as a string
        assert loaded.clinic.name == clinic.name  # the clinic came with it
    orm = get_user_model().objects.select_related("clinic").get(pk=staff.pk)
    assert field_values(loaded) == field_values(orm)
    assert field_values(loaded.clinic) == field_values(orm.clinic)
    assert loaded._state.db == orm._state.db and not loaded._state.adding
    loaded.first_name = "Changed"
    loaded.save()  # an instance the ORM can save, as one it loaded
    assert get_user_model().objects.get(pk=staff.pk).first_name == "Changed"


@pytest.mark.django_db
def test_an_operator_without_a_clinic_loads_with_none_and_no_second_query(user_factory, django_assert_num_queries):
    operator = user_factory(clinic=None, is_superuser=True, is_staff=True)
    with django_assert_num_queries(1):
        loaded = ClinicUserBackend().get_user(operator.pk)
        assert loaded.clinic is None
    assert loaded.is_superuser is True


@pytest.mark.django_db
def test_no_such_user_or_an_inactive_one_is_no_user(staff):
    assert ClinicUserBackend().get_user(staff.pk + 1000) is None
    staff.is_active = False
    staff.save()
    assert ClinicUserBackend().get_user(staff.pk) is None
