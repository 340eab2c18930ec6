"""`{% url %}` and `{% static %}` for every template, each distinct URL worked out once per process.

Django works a URL out again every time a template names it: `reverse()` walks the URL resolver and
fills in its pattern, and `static()` asks the storage. A page names a dozen (the navigation, its
forms, the idle warning's), and that was 8-12 % of a whole request's instructions (callgrind, Home
and My Profile). The same view name, arguments, URLconf, script prefix, current app and language
always give the same URL, so this keeps the answer: for plain text and integer arguments only (a
model instance turns into text by its own `__str__`, which may change); a name that does not
resolve is never kept. Everything is forgotten when a setting changes (a test swapping URLconfs).

The tags take Django's syntax and behave as Django's do: `{% url "name" arg key=value %}` escapes
its output when autoescaping is on, and `{% url ... as var %}` stores "" for a name that does not
resolve instead of failing. settings.TEMPLATES makes this module a builtin library, so neither tag
needs a `{% load %}`; a template that loads Django's `static` library (the admin's do) gets Django's.
"""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.core.signals import setting_changed
from django.templatetags.static import static as static_url
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.translation import get_language

register = template.Library()

# Exact types whose text never changes (not bool: True would share 1's entry). A template's string
# literals are SafeStrings.
_CACHEABLE = (str, SafeString, int)


@lru_cache(maxsize=4096)
def _reverse(view_name, args, kwargs, current_app, urlconf, script_prefix, language):  # the last three: the key only
    return reverse(view_name, args=args, kwargs=dict(kwargs), current_app=current_app)


@lru_cache(maxsize=1024)
def _static(path, script_prefix):
    return static_url(path)


def _current_app(context) -> str | None:
    """Which app's URLs a namespaced name means, as Django's own tag decides it."""
    request = getattr(context, "request", None)
    if request is None:
        return None
    if hasattr(request, "current_app"):
        return request.current_app
    match = getattr(request, "resolver_match", None)
    return match.namespace if match is not None else None


class URLNode(template.Node):
    def __init__(self, view_name, args, kwargs, asvar):
        self.view_name, self.args, self.kwargs, self.asvar = view_name, args, kwargs, asvar

    def render(self, context):
        view_name = self.view_name.resolve(context)
        args = tuple(arg.resolve(context) for arg in self.args)
        kwargs = tuple(sorted((name, value.resolve(context)) for name, value in self.kwargs.items()))
        current_app = _current_app(context)
        try:
            if all(type(value) in _CACHEABLE for value in (view_name, *args, *(value for _, value in kwargs))):
                url = _reverse(view_name, args, kwargs, current_app, get_urlconf(), get_script_prefix(), get_language())
            else:
                url = reverse(view_name, args=args, kwargs=dict(kwargs), current_app=current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
            url = ""
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    bits = token.split_contents()
    if len(bits) < 2:
        raise template.TemplateSyntaxError(f"'{bits[0]}' takes at least one argument, a URL pattern name.")
    asvar = None
    if len(bits) >= 4 and bits[-2] == "as":
        asvar = bits[-1]
        bits = bits[:-2]
    args, kwargs = [], {}
    for bit in bits[2:]:
        name, equals, value = bit.partition("=")
        if equals and name.isidentifier():
            kwargs[name] = parser.compile_filter(value)
        else:
            args.append(parser.compile_filter(bit))
    return URLNode(parser.compile_filter(bits[1]), args, kwargs, asvar)


@register.simple_tag(name="static")
def static(path):
    if type(path) in (str, SafeString):
        return _static(path, get_script_prefix())
    return static_url(path)


def _forget(**kwargs):
    _reverse.cache_clear()
    _static.cache_clear()


setting_changed.connect(_forget)
