"""Read-only queries for the clinic's user pages; each costs a fixed number of queries."""

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet

from clinic_auth.twofactor import devices
from clinics.models import Clinic

from .models import User

SORTS = {
    "name": ("last_name", "first_name", "username"),
    "-name": ("-last_name", "-first_name", "-username"),
    "2fa": ("has_2fa", "last_name", "first_name", "username"),
    "-2fa": ("-has_2fa", "last_name", "first_name", "username"),
}


def clinic_users(clinic: Clinic) -> QuerySet[User]:
    return User.objects.filter(clinic=clinic)


def user_list(*, clinic: Clinic, query: str = "", sort: str = "name") -> QuerySet[User]:
    users = devices.with_methods(clinic_users(clinic)).annotate(
        has_2fa=ExpressionWrapper(devices.enrolled_q(), output_field=BooleanField())
    )
    # Every word must match some field, so "joy nurse" finds Joy Nurse by her full name.
    for term in query.split():
        users = users.filter(
            Q(username__icontains=term)
            | Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
            | Q(email__icontains=term)
        )
    return users.order_by(*SORTS.get(sort, SORTS["name"]))


def enrolment_counts(clinic: Clinic) -> dict[str, int]:
    counts = clinic_users(clinic).aggregate(
        total=Count("pk"),
        enrolled=Count("pk", filter=devices.enrolled_q()),
    )
    return counts
