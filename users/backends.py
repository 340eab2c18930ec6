from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError

from clinic_auth.http import client_ip
from clinic_auth.passwords import PasswordAttemptsThrottled

from . import login_throttle, selectors


class ClinicUserBackend(ModelBackend):
    """Django's ModelBackend, with two differences.

    Every password attempt counts in the database throttle before the password is checked (per
    account from one address, and per address): a refused one raises PasswordAttemptsThrottled,
    which Django's authenticate() lets through to its caller, so the login page and "Confirm it's
    you" both say how long the lock lasts. And the signed-in user is loaded with their clinic in
    one query (selectors.signed_in_user).
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        ip = client_ip(request)
        until = login_throttle.begin_attempt(username=username, ip=ip)
        if until is not None:
            raise PasswordAttemptsThrottled(until)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            login_throttle.record_success(username=username, ip=ip)
        return user

    def get_user(self, user_id):
        try:
            user = selectors.signed_in_user(user_id)
        except ValidationError:  # a session holding something that is no user id
            return None
        return user if user is not None and self.user_can_authenticate(user) else None
