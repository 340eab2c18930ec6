from django.apps import AppConfig


class TwoFactorConfig(AppConfig):
    name = "clinic_auth.twofactor"
    label = "twofactor"
    verbose_name = "Two-factor authentication"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
