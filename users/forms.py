from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm, SetPasswordForm
from django.utils.translation import gettext_lazy as _

from clinic_auth.twofactor import texts
from clinic_auth.passwords import PasswordAttemptsThrottled

from clinics.forms import TIME_ZONE_CHOICES
from clinics.models import Clinic, default_time_zone

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


class RuleErrorsUnderTheNewPassword:
    """For Django's set- and change-password forms: a password the rules refuse ("too short") is
    said under the new password, where it was typed, not under its confirmation."""

    def clean(self):
        self.validate_passwords("new_password1", "new_password2")
        self.validate_password_for_user(self.user, "new_password1")
        return forms.Form.clean(self)


class ChangePasswordForm(RuleErrorsUnderTheNewPassword, PasswordChangeForm):
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

    def __init__(self, *args, clinic, **kwargs):
        self.clinic = clinic
        super().__init__(*args, **kwargs)

    def clean_email(self) -> str:
        # Within the clinic only: whether another clinic has this address is none of this one's business.
        email = User.objects.normalize_email(self.cleaned_data["email"]).strip()
        if User.objects.filter(clinic=self.clinic, email__iexact=email).exists():
            raise forms.ValidationError(_("A user of your clinic already has this email address."), code="duplicate_email")
        return email

    def clean(self):
        cleaned = super().clean()
        if self.errors.get("username") or "email" not in cleaned:
            return cleaned
        username = username_for(self, chosen=cleaned.get("username"), email=cleaned["email"], fields=("username", "email"))
        if username is not None:
            cleaned["username"] = username
        return cleaned


def username_for(form: forms.Form, *, chosen: str | None, email: str, fields: tuple[str, str]) -> str | None:
    """The new account's username: the one chosen, or else the e-mail address (a free variant of it
    when taken, so the answer says nothing about who else has an account). None, with the error on
    the form's field (`fields`: the username's, the e-mail's), when it cannot be used."""
    chosen = (chosen or "").strip()
    username = chosen or email
    field_name = fields[0] if chosen else fields[1]
    try:
        for validator in User._meta.get_field("username").validators:
            validator(username)
    except forms.ValidationError as error:
        form.add_error(field_name, error)
        return None
    if not chosen:
        return available_username(username)
    if User.objects.filter(username__iexact=chosen).exists():
        form.add_error(field_name, forms.ValidationError(USERNAME_UNAVAILABLE, code="username_unavailable"))
        return None
    return chosen


USERNAME_UNAVAILABLE = _("This username is not available. Choose another.")


def available_username(wanted: str) -> str:
    """`wanted`, or the first of wanted-2, wanted-3, ... that no user has (case-insensitively)."""
    limit = User._meta.get_field("username").max_length
    taken = {
        name.casefold()
        for name in User.objects.filter(username__istartswith=wanted[: limit - 4]).values_list("username", flat=True)
    }
    candidate, n = wanted, 1
    while candidate.casefold() in taken:
        n += 1
        suffix = f"-{n}"
        candidate = wanted[: limit - len(suffix)] + suffix
    return candidate


class ChangeRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=User.Role.choices)


class ForgotPasswordForm(PasswordResetForm):
    """Django's reset form, asking for a username or an e-mail address."""

    email = forms.CharField(
        label=_("Username or email"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}),
    )


class NewPasswordForm(RuleErrorsUnderTheNewPassword, SetPasswordForm):
    """Django's set-password form, with the validators' rules shown before typing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = _("New password")
        self.fields["new_password2"].label = _("Confirm new password")
        self.password_rules = password_validation.password_validators_help_text_html()
        self.fields["new_password1"].help_text = ""
        self.fields["new_password1"].widget.attrs["aria-describedby"] = "password-rules"


class ClinicCreateForm(forms.ModelForm):
    """A new clinic and its first clinic admin, who is invited by e-mail (`manage.py create_clinic`,
    and the Django admin's Add clinic page)."""

    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=TIME_ZONE_CHOICES,
        required=False,
        error_messages={"invalid_choice": _("Unknown time zone: %(value)s. Use a name such as Europe/Paris.")},
        help_text=_("Leave empty for the server's default."),
    )
    admin_email = forms.EmailField(label=_("First clinic admin's email"), max_length=254)
    admin_username = forms.CharField(
        label=_("First clinic admin's username"),
        max_length=150,
        required=False,
        help_text=_("Leave empty to use the email address."),
    )
    admin_first_name = forms.CharField(label=_("First clinic admin's first name"), max_length=150, required=False)
    admin_last_name = forms.CharField(label=_("First clinic admin's last name"), max_length=150, required=False)

    class Meta:
        model = Clinic
        fields = ["name", "address", "phone", "time_zone"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        existing = Clinic.objects.filter(name__iexact=name).values_list("name", flat=True).first()
        if existing is not None:
            raise forms.ValidationError(_("A clinic named %(name)s already exists."), params={"name": existing}, code="duplicate_name")
        return name

    def clean_time_zone(self) -> str:
        return self.cleaned_data.get("time_zone") or default_time_zone()

    def clean_admin_email(self) -> str:
        # Checked across every clinic: the operator sees them all, and an address in use is most often
        # a second run of the same command.
        email = User.objects.normalize_email(self.cleaned_data["admin_email"]).strip()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this email address already exists."), code="duplicate_email")
        return email

    def clean(self):
        cleaned = super().clean()
        if self.errors.get("admin_username") or "admin_email" not in cleaned:
            return cleaned
        username = username_for(
            self, chosen=cleaned.get("admin_username"), email=cleaned["admin_email"], fields=("admin_username", "admin_email")
        )
        if username is not None:
            cleaned["admin_username"] = username
        return cleaned
