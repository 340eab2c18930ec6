import math
import re

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

from users import login_throttle

from .events import client_ip

from .flows import RECOVERY_ALPHABET, RECOVERY_CODE_LENGTH

TOTP_PATTERN = re.compile(r"[0-9]{6}")
RECOVERY_PATTERN = re.compile(f"[{RECOVERY_ALPHABET}]{{{RECOVERY_CODE_LENGTH}}}")
SEPARATORS = re.compile(r"[\s\-]+")


def code_widget(*, numeric: bool = True) -> forms.TextInput:
    attrs = {"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false", "autofocus": True}
    if numeric:
        attrs.update({"inputmode": "numeric", "pattern": r"[0-9 ]*"})
    return forms.TextInput(attrs=attrs)


class LoginForm(AuthenticationForm):
    """Django's login form, throttled per account-and-address and per address."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "The username or password is incorrect.",
        "inactive": "The username or password is incorrect.",
        "throttled": "Too many failed sign-in attempts. Try again in {minutes} minutes.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request)
        if username and self.cleaned_data.get("password"):
            until = login_throttle.begin_attempt(username=username, ip=ip)
        else:
            until = login_throttle.locked_until(username=username, ip=ip)
        if until is not None:
            minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
            raise forms.ValidationError(
                self.error_messages["throttled"].format(minutes=minutes), code="throttled"
            )
        cleaned = super().clean()  # a wrong password raises here and stays counted
        if self.get_user() is not None:
            login_throttle.record_success(username=username, ip=ip)
        return cleaned


class TOTPCodeForm(forms.Form):
    """A 6-digit code from an authenticator app; "123 456" is fine, "١٢٣٤٥٦" is not."""

    code = forms.CharField(label="Verification Code", max_length=32, widget=code_widget())

    def clean_code(self) -> str:
        code = SEPARATORS.sub("", self.cleaned_data["code"])
        if not (code.isascii() and TOTP_PATTERN.fullmatch(code)):
            raise forms.ValidationError("Enter the 6-digit code shown in your authenticator app.")
        return code


class ChallengeForm(forms.Form):
    """A code from the app, or one of the user's recovery codes."""

    code = forms.CharField(label="Verification Code", max_length=32, widget=code_widget())

    def __init__(self, *args, recovery: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if recovery:
            self.fields["code"].label = "Recovery Code"
            self.fields["code"].widget = code_widget(numeric=False)

    def clean_code(self) -> tuple[str, str]:
        code = SEPARATORS.sub("", self.cleaned_data["code"])
        if not code.isascii():
            raise forms.ValidationError(self.invalid_message)
        if TOTP_PATTERN.fullmatch(code):
            return ("totp", code)
        if RECOVERY_PATTERN.fullmatch(code.upper()):
            return ("recovery", code.upper())
        raise forms.ValidationError(self.invalid_message)

    invalid_message = "Enter the 6-digit code from your authenticator app, or a recovery code like ABCDE-FGHJK."
