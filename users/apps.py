from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Users"

    def ready(self) -> None:
        from django.contrib.auth import user_logged_in, user_logged_out

        from . import receivers

        user_logged_in.connect(receivers.remember_signed_in_browser, dispatch_uid="users.signed_in_browser")
        user_logged_out.connect(receivers.forget_signed_out_browser, dispatch_uid="users.signed_out_browser")
