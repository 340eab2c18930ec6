"""Form fields render through Django's Jinja2 widget templates (settings.FORM_RENDERER, for speed):
the HTML must be what Django's own template renderer makes of every form the app shows."""

import re

import pytest
from django.forms.renderers import DjangoTemplates, Jinja2, get_default_renderer
from django.template import TemplateDoesNotExist

from clinic_auth.twofactor.forms import ChallengeForm, ReauthPasswordForm
from clinic_auth.twofactor.passkeys.forms import KeyNameForm
from clinic_auth.twofactor.totp.forms import TOTPCodeForm
from clinics.forms import AuditFilterForm, ClinicForm
from users import forms as user_forms


def html(text: str) -> str:
    # Whitespace between tags differs, and MarkupSafe writes an apostrophe as &#39; where Django
    # writes &#x27;: the same character. Every other byte must match.
    return re.sub(r"\s+", " ", str(text)).replace("> <", "><").replace("&#39;", "&#x27;").strip()


def every_part(form) -> list[str]:
    parts = [str(bound) for bound in form] + [str(bound.errors) for bound in form] + [str(form.non_field_errors())]
    parts.append(form.as_div())
    return [html(part) for part in parts]


def forms_to_compare(staff):
    return [
        user_forms.LoginForm(data={"username": "someone", "password": ""}),
        user_forms.LoginForm(),
        KeyNameForm(initial={"name": "Front desk key"}, auto_id="id_key_3_%s"),
        KeyNameForm(data={"name": ""}),
        ReauthPasswordForm(),
        user_forms.InviteMemberForm(data={"email": "not-an-address"}, clinic=staff.clinic),
        user_forms.ForgotPasswordForm(),
        user_forms.NewPasswordForm(staff, data={"new_password1": "a", "new_password2": "b"}),
        user_forms.UserSearchForm(data={"q": "kowal"}),
        TOTPCodeForm(auto_id="id_disable_%s"),
        TOTPCodeForm(data={"code": "12"}),
        ChallengeForm(data={"code": "abc"}, recovery=True),
        ClinicForm(instance=staff.clinic),
        ClinicForm(data={"name": "", "require_from": "date", "mandatory_from": "not a date"}, instance=staff.clinic),
        AuditFilterForm(data={"date_from": "2026-11-30", "date_to": "2026-11-01"}),
    ]


def test_the_app_renders_form_fields_through_jinja2():
    assert isinstance(get_default_renderer(), Jinja2)


@pytest.mark.django_db
def test_jinja2_renders_every_form_as_djangos_template_renderer_does(staff):
    compared = 0
    for form in forms_to_compare(staff):
        form.is_bound and form.is_valid()
        form.renderer = Jinja2()
        fast = every_part(form)
        form.renderer = DjangoTemplates()
        reference = every_part(form)
        assert fast == reference, type(form).__name__
        compared += len(reference)
    assert compared > 60


def test_a_widget_template_only_django_has_comes_from_djangos_renderer():
    """The Django admin's widgets (tests/test_url_walk.py opens its pages) exist only as Django templates."""
    from django.template.backends.django import Template as DjangoTemplate
    from django.template.backends.jinja2 import Template as Jinja2Template

    renderer = get_default_renderer()
    assert isinstance(renderer.get_template("django/forms/widgets/input.html"), Jinja2Template)
    assert isinstance(renderer.get_template("admin/widgets/related_widget_wrapper.html"), DjangoTemplate)
    with pytest.raises(TemplateDoesNotExist):
        renderer.get_template("no/such/widget.html")
