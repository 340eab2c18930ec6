"""The member page's invitation, role and account sections."""

from django.utils import timezone

from . import selectors
from .forms import ChangeRoleForm
from .models import User


def membership_context(*, member: User) -> dict:
    invitation = selectors.latest_invitation(member)
    return {
        "invitation": invitation,
        "invitation_usable": invitation is not None and invitation.is_usable(now=timezone.now()),
        "role_form": ChangeRoleForm(initial={"role": member.role}, auto_id="id_role_%s"),
    }
