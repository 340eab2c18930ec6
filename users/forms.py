from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm, SetPasswordForm
from django.utils.translation import gettext_lazy as _

from clinic_auth.twofactor import texts
from clinic_auth.passwords import PasswordAttemptsThrottled

from .models import User
from .selectors import SORTS


class UserSearchForm(forms.Form):
    q = forms.CharField(label=_("Search users"), required=False, max_length=100, strip=True)
    sort = forms.ChoiceField(
        required=False,
        choices=[("", _("Default"))] + [(key, key) for key in SORTS],
    )
    status = forms.ChoiceField(
        label=_("Show"),
        required=False,
        choices=[("", _("All users")), ("active", _("Active")), ("deactivated", _("Deactivated"))],
    )
    twofa = forms.ChoiceField(
        label=_("2FA set-up"),
        required=False,
        choices=[("", _("All users")), ("enabled", _("2FA enabled")), ("none", _("2FA not set up"))],
    )


class LoginForm(AuthenticationForm):
    """Django's login form; the backend counts every attempt in the password throttle."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The username or password is incorrect."),
        "inactive": _("The username or password is incorrect."),
        "throttled": texts.MESSAGES["login_throttled"],
    }

    def clean(self):
        try:
            return super().clean()  # a wrong password raises here and stays counted
        except PasswordAttemptsThrottled as throttled:
            raise forms.ValidationError(texts.throttled_message(throttled.until), code="throttled") from None


class ChangePasswordForm(PasswordChangeForm):
    """Django's change-password form, whose old password goes through authenticate(): it counts in
    the same throttle as the login (per account from one address, and per address) and locks the
    same way, so the form is no password oracle on an unlocked computer."""

    def __init__(self, user, *args, request=None, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        try:
            proved = authenticate(self.request, username=self.user.get_username(), password=old_password)
        except PasswordAttemptsThrottled as throttled:
            raise forms.ValidationError(texts.throttled_message(throttled.until), code="throttled") from None
        if proved is None or proved.pk != self.user.pk:
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class InviteMemberForm(forms.Form):
    """Add user: who they are and their role; the username defaults to the e-mail address."""

    first_name = forms.CharField(label=_("First name"), max_length=150)
    last_name = forms.CharField(label=_("Last name"), max_length=150)
    email = forms.EmailField(label=_("Email"), max_length=254)
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        required=False,
        help_text=_("Leave empty to use the email address. Letters, digits and @ . + - _ only."),
    )
    role = forms.ChoiceField(label=_("Role"), choices=User.Role.choices, initial=User.Role.STAFF)

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).strip()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("A user with this email address already exists."), code="duplicate_email")
        return email

    def clean(self):
        cleaned = super().clean()
        if self.errors.get("username") or "email" not in cleaned:
            return cleaned
        username = (cleaned.get("username") or cleaned["email"]).strip()
        field_name = "username" if cleaned.get("username") else "email"
        try:
            for validator in User._meta.get_field("username").validators:
                validator(username)
        except forms.ValidationError as error:
            self.add_error(field_name, error)
            return cleaned
        if User.objects.filter(username__iexact=username).exists():
            self.add_error(field_name, forms.ValidationError(
                _("The username %(username)s is already taken.") % {"username": username}, code="duplicate_username"
            ))
        cleaned["username"] = username
        return cleaned


class ChangeRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=User.Role.choices)


class ForgotPasswordForm(PasswordResetForm):
    """Django's reset form, asking for a username or an e-mail address."""

    email = forms.CharField(
        label=_("Username or email"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}),
    )


class NewPasswordForm(SetPasswordForm):
    """Django's set-password form, with the validators' rules shown before typing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = _("New password")
        self.fields["new_password2"].label = _("Confirm new password")
        self.password_rules = password_validation.password_validators_help_text_html()
        self.fields["new_password1"].help_text = ""
        self.fields["new_password1"].widget.attrs["aria-describedby"] = "password-rules"
