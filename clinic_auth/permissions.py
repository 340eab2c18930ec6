"""Who may manage a clinic: its own clinic admins, and nobody else."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _


class ClinicAdminRequiredMixin:
    """For every page that manages a clinic or its members.

    Anyone but one of the clinic's admins gets 403 before any lookup. A page that names a clinic
    in its address (`clinic_pk`) is a 404 for any clinic but the admin's own, and a member lookup
    (`member`) is scoped to the admin's clinic, so another clinic's member is a 404 whatever the id.
    """

    permission_denied_message = _("Only clinic administrators can manage this clinic.")

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_clinic_admin:
            raise PermissionDenied(str(self.permission_denied_message))
        if "clinic_pk" in kwargs and kwargs.pop("clinic_pk") != request.user.clinic_id:
            raise Http404("No such clinic.")
        self.clinic = request.user.clinic  # loaded with the signed-in user
        return super().dispatch(request, *args, **kwargs)

    def members(self) -> QuerySet:
        """The admin's clinic's members; views add what their page shows."""
        return get_user_model().objects.filter(clinic_id=self.request.user.clinic_id)

    def member(self, pk: int, members: QuerySet | None = None):
        return get_object_or_404(self.members() if members is None else members, pk=pk)
