from django.apps import AppConfig


class TwoFactorConfig(AppConfig):
    name = "clinic_auth.twofactor"
    label = "twofactor"
    verbose_name = "Two-factor authentication"

    def ready(self) -> None:
        from django.contrib.auth import user_logged_in
        from django.contrib.auth.models import update_last_login

        from . import checks  # noqa: F401  (registers the system checks)

        # last_login means "last signed in": services.user_record_sign_in stamps it once the
        # second factor has passed (for a code, in the code check's transaction), not at the
        # password step as Django's receiver would.
        user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
