import math

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic_auth.twofactor import texts
from clinic_auth.twofactor.events import client_ip

from . import login_throttle
from .selectors import SORTS


class UserSearchForm(forms.Form):
    q = forms.CharField(label=_("Search users"), required=False, max_length=100, strip=True)
    sort = forms.ChoiceField(
        required=False,
        choices=[("", _("Default"))] + [(key, key) for key in SORTS],
    )


class LoginForm(AuthenticationForm):
    """Django's login form, throttled per account-and-address and per address."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The username or password is incorrect."),
        "inactive": _("The username or password is incorrect."),
        "throttled": texts.MESSAGES["login_throttled"],
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


class KeyNameForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=64, strip=True)


class ReauthPasswordForm(forms.Form):
    """The password again, for an account without 2FA (checked by the view, under the sign-in throttle)."""

    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
