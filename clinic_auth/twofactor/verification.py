"""`request.user.is_verified()` and `request.user.otp_device`, meaning what django-otp documents.

django-otp's OTPMiddleware loads the verifying device on every request to answer both: one query
per page. TwoFactorMiddleware already knows whether the session passed the second factor (its gate,
cached in the session against the user's stamp), so `is_verified()` costs nothing; the device is
loaded from the persistent id django-otp keeps in the session only when something reads
`otp_device`. A device removed since the session passed with it reads as None, as in django-otp.
"""

from functools import cached_property

from django_otp.models import Device


class OTPVerifiedUserMixin:
    """For AUTH_USER_MODEL. TwoFactorMiddleware sets `otp_device_persistent_id` and `is_verified` on
    each request's user; django_otp.login sets `otp_device` itself when a device verifies."""

    otp_device_persistent_id: str | None = None

    def is_verified(self) -> bool:  # replaced per request by TwoFactorMiddleware
        return False

    @cached_property
    def otp_device(self):
        if not self.otp_device_persistent_id:
            return None
        device = Device.from_persistent_id(self.otp_device_persistent_id, for_verify=False)
        return device if device is not None and device.user_id == self.pk else None
