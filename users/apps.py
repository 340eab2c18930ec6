from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Users"

    def ready(self) -> None:
        from django.contrib.auth import user_logged_in, user_logged_out
        from django.db.models.signals import post_delete, post_init, post_save

        from clinic_auth.twofactor import devices
        from clinic_auth.twofactor.signals import sign_in_completed

        from . import receivers

        user_logged_in.connect(receivers.remember_signed_in_browser, dispatch_uid="users.signed_in_browser")
        user_logged_out.connect(receivers.forget_signed_out_browser, dispatch_uid="users.signed_out_browser")
        sign_in_completed.connect(receivers.list_completed_sign_in, dispatch_uid="users.completed_sign_in")

        for model in devices.PRIMARY_METHODS:
            uid = f"users.twofa_enrolled.{model._meta.label_lower}"
            post_init.connect(receivers.remember_loaded_device, sender=model, dispatch_uid=uid)
            post_save.connect(receivers.device_saved, sender=model, dispatch_uid=uid)
            post_delete.connect(receivers.device_deleted, sender=model, dispatch_uid=uid)
