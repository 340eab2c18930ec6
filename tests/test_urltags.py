"""clinic_auth.urltags: {% url %} and {% static %} give what Django's own tags give, worked out once."""

import pytest
from django.template import Context, Engine, RequestContext
from django.template.loader import get_template
from django.test import RequestFactory, override_settings
from django.urls import NoReverseMatch, reverse, set_script_prefix

from clinic_auth import urltags

OURS = Engine(builtins=["clinic_auth.urltags"])
DJANGOS = Engine(libraries={"static": "django.templatetags.static"})

CASES = [
    "{% url 'home' %}",
    "{% url 'clinic_settings' 7 %}",
    "{% url 'clinic_settings' clinic_id %}",
    "{% url 'clinic_settings' clinic_pk=clinic_id %}",
    "{% url 'otp_webauthn:js-i18n-catalog' %}",
    "{% url 'login' as login_url %}[{{ login_url }}]",
    "{% url 'no-such-view' as missing %}[{{ missing }}]",
    "{% url name_from_context %}",
]


def render(engine, source, context=None, *, load_static=False):
    prefix = "{% load static %}" if load_static else ""
    return engine.from_string(prefix + source).render(Context(context or {}))


@pytest.fixture(autouse=True)
def fresh_caches():
    urltags._reverse.cache_clear()
    urltags._static.cache_clear()
    yield
    set_script_prefix("/")


@pytest.mark.parametrize("source", CASES)
def test_url_gives_what_djangos_tag_gives(source):
    context = {"clinic_id": 42, "name_from_context": "profile"}
    assert render(OURS, source, context) == render(DJANGOS, source, context)
    assert render(OURS, source, context) == render(DJANGOS, source, context)  # and again, from the cache


def test_each_distinct_url_is_worked_out_once():
    for _ in range(3):
        render(OURS, "{% url 'home' %}{% url 'clinic_settings' 1 %}{% url 'clinic_settings' 2 %}")
    info = urltags._reverse.cache_info()
    assert (info.misses, info.hits) == (3, 6)


def test_a_name_that_does_not_resolve_fails_as_djangos_does_and_is_not_kept():
    with pytest.raises(NoReverseMatch):
        render(OURS, "{% url 'no-such-view' %}")
    with pytest.raises(NoReverseMatch):
        render(OURS, "{% url 'clinic_settings' %}")
    assert urltags._reverse.cache_info().currsize == 0


def test_an_object_argument_is_turned_into_text_every_time():
    class Named:
        def __init__(self, text):
            self.text = text

        def __str__(self):
            return self.text

    argument = Named("3")
    assert render(OURS, "{% url 'clinic_settings' obj %}", {"obj": argument}) == reverse("clinic_settings", args=[3])
    argument.text = "4"
    assert render(OURS, "{% url 'clinic_settings' obj %}", {"obj": argument}) == reverse("clinic_settings", args=[4])
    render(OURS, "{% url 'clinic_settings' 1 %}")
    with pytest.raises(NoReverseMatch):  # True is not 1 here, though they are equal as keys
        render(OURS, "{% url 'clinic_settings' flag %}", {"flag": True})


def test_the_script_prefix_is_part_of_each_url():
    for source in ("{% url 'home' %}", "{% static 'css/app.css' %}"):
        set_script_prefix("/")
        assert render(OURS, source) == render(DJANGOS, source, load_static=True)
        set_script_prefix("/clinic-a/")
        assert render(OURS, source) == render(DJANGOS, source, load_static=True)
    assert render(OURS, "{% url 'home' %}") == "/clinic-a/home/"


def test_static_gives_what_djangos_tag_gives():
    for source in ("{% static 'css/app.css' %}", "{% static 'img/a b.svg' %}", "{% static path %}", "{% static 'js/app.js' as js %}[{{ js }}]"):
        assert render(OURS, source, {"path": "js/idle.js"}) == render(DJANGOS, source, {"path": "js/idle.js"}, load_static=True)


def test_a_settings_change_forgets_every_url():
    render(OURS, "{% url 'home' %}{% static 'css/app.css' %}")
    assert urltags._reverse.cache_info().currsize == urltags._static.cache_info().currsize == 1
    with override_settings(ROOT_URLCONF="tests.error_urls"):
        assert urltags._reverse.cache_info().currsize == urltags._static.cache_info().currsize == 0


def test_a_current_app_from_the_request_chooses_the_namespace_as_djangos_does(rf: RequestFactory):
    request = rf.get("/")
    request.current_app = "otp_webauthn"
    source = "{% url 'otp_webauthn:js-i18n-catalog' %}"
    ours = OURS.from_string(source).render(RequestContext(request, {}))
    assert ours == DJANGOS.from_string(source).render(RequestContext(request, {}))


def test_the_app_templates_use_these_tags():
    urltags._reverse.cache_clear()
    urltags._static.cache_clear()
    get_template("500.html").render({})
    assert urltags._reverse.cache_info().currsize > 0 and urltags._static.cache_info().currsize > 0
