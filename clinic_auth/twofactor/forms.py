import re

from django import forms
from django.utils.translation import gettext_lazy as _

from .services import RECOVERY_ALPHABET, RECOVERY_CODE_LENGTH

TOTP_PATTERN = re.compile(r"[0-9]{6}")
SIGNIN_CODE_PATTERN = re.compile(r"[0-9]{8}")  # one-time sign-in code issued by a clinic admin
RECOVERY_PATTERN = re.compile(f"[{RECOVERY_ALPHABET}]{{{RECOVERY_CODE_LENGTH}}}")
SEPARATORS = re.compile(r"[\s\-]+")


def code_widget(*, numeric: bool = True, autofocus: bool = False) -> forms.TextInput:
    # Autofocus only where the code box is the whole page (the challenge): elsewhere it
    # scrolls the page past its heading and instructions, or greets people with "Disable".
    attrs = {"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}
    if autofocus:
        attrs["autofocus"] = True
    if numeric:
        attrs.update({"inputmode": "numeric", "pattern": r"[0-9 ]*"})
    return forms.TextInput(attrs=attrs)


class TOTPCodeForm(forms.Form):
    """A 6-digit code from an authenticator app; "123 456" is fine, "١٢٣٤٥٦" is not."""

    code = forms.CharField(label=_("Verification Code"), max_length=32, widget=code_widget())

    def clean_code(self) -> str:
        code = SEPARATORS.sub("", self.cleaned_data["code"])
        if not (code.isascii() and TOTP_PATTERN.fullmatch(code)):
            raise forms.ValidationError(_("Enter the 6-digit code shown in your authenticator app."))
        return code


class ChallengeForm(forms.Form):
    """A code from the app, one of the user's recovery codes, or a one-time sign-in code from an admin."""

    code = forms.CharField(label=_("Verification Code"), max_length=32, widget=code_widget(autofocus=True))

    def __init__(self, *args, recovery: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if recovery:
            self.fields["code"].label = _("Recovery Code")
            self.fields["code"].widget = code_widget(numeric=False, autofocus=True)

    def clean_code(self) -> tuple[str, str]:
        code = SEPARATORS.sub("", self.cleaned_data["code"])
        if not code.isascii():
            raise forms.ValidationError(self.invalid_message)
        if TOTP_PATTERN.fullmatch(code):
            return ("totp", code)
        if SIGNIN_CODE_PATTERN.fullmatch(code):
            return ("signin", code)
        if RECOVERY_PATTERN.fullmatch(code.upper()):
            return ("recovery", code.upper())
        raise forms.ValidationError(self.invalid_message)

    invalid_message = _("Enter the 6-digit code from your authenticator app, or a recovery code like ABCDE-FGHJK.")
