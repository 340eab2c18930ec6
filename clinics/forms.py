from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Clinic


class ClinicForm(forms.ModelForm):
    class Meta:
        model = Clinic
        fields = ["name", "address", "phone", "mandatory_2fa"]
        labels = {"mandatory_2fa": _("Mandatory 2FA")}
        help_texts = {
            "mandatory_2fa": _(
                "When on, every user of this clinic must set up two-factor authentication "
                "at their next sign-in (or next page view) before they can use the application."
            )
        }
