from django import forms
from django.utils.translation import gettext_lazy as _

from .services import KEY_NAME_MAX_LENGTH


class KeyNameForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=KEY_NAME_MAX_LENGTH, strip=True)
