from django import forms

from .selectors import SORTS


class UserSearchForm(forms.Form):
    q = forms.CharField(label="Search users", required=False, max_length=100, strip=True)
    sort = forms.ChoiceField(
        required=False,
        choices=[("", "Default")] + [(key, key) for key in SORTS],
    )
