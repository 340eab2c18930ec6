from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class ClinicUserBackend(ModelBackend):
    """Django's ModelBackend, except that the signed-in user is loaded with their clinic in the
    same query: every page shows the clinic's name and the 2FA rules read its policy, so this
    saves one query on every request (issue 16, `make bench`)."""

    def get_user(self, user_id):
        User = get_user_model()
        try:
            user = User._default_manager.select_related("clinic").get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
