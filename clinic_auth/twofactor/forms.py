from django import forms
from django.utils.translation import gettext_lazy as _

from .methods import method_for
from .widgets import SEPARATORS, code_widget


class ChallengeForm(forms.Form):
    """A code from the app, one of the user's recovery codes, or a one-time sign-in code from an admin:
    cleaned into (method, token), the method whose codes it looks like (methods.CODE_METHODS)."""

    code = forms.CharField(label=_("Verification Code"), max_length=32, widget=code_widget(autofocus=True))
    invalid_message = _("Enter the 6-digit code from your authenticator app, or a recovery code like ABCDE-FGHJK.")

    def __init__(self, *args, recovery: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if recovery:
            self.fields["code"].label = _("Recovery Code")
            self.fields["code"].widget = code_widget(numeric=False, autofocus=True)

    def clean_code(self):
        typed = SEPARATORS.sub("", self.cleaned_data["code"])
        found = method_for(typed) if typed.isascii() else None
        if found is None:
            raise forms.ValidationError(self.invalid_message)
        return found


class ReauthPasswordForm(forms.Form):
    """The password again, for an account without 2FA (checked by the view through authenticate())."""

    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
