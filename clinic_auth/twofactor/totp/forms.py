import re

from django import forms
from django.utils.translation import gettext_lazy as _

from ..widgets import SEPARATORS, code_widget

TOTP_PATTERN = re.compile(r"[0-9]{6}")


class TOTPCodeForm(forms.Form):
    """A 6-digit code from an authenticator app; "123 456" is fine, "١٢٣٤٥٦" is not."""

    code = forms.CharField(label=_("Verification Code"), max_length=32, widget=code_widget())

    def clean_code(self) -> str:
        code = SEPARATORS.sub("", self.cleaned_data["code"])
        if not (code.isascii() and TOTP_PATTERN.fullmatch(code)):
            raise forms.ValidationError(_("Enter the 6-digit code shown in your authenticator app."))
        return code
