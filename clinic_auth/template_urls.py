"""Django's `{% url %}` and `{% static %}` tags, except that each distinct URL is worked out once.

Django works a URL out again every time a template names it: `reverse()` walks the URL resolver and
fills in its pattern, and `static()` reads STATIC_URL with the script prefix and joins the path. A
page names a dozen of them (the navigation, its forms, the idle warning's), and they were 8-12 %
of the instructions of a whole request (callgrind: Home 5.39M -> 4.75M, My Profile 11.8M -> 10.8M;
issue 16). The same view name, arguments, URLconf, script prefix, current app and language always
give the same URL, so the answer is kept, for plain text and integer arguments only (a model instance is
turned into text by its own `__str__`, which may change); a name that does not resolve is never
kept and fails as Django's tag does. Everything is forgotten when a setting changes (a test that
swaps the URLconf, say).

settings.TEMPLATES makes this module a builtin library: `{% url %}` and `{% static %}` need no
`{% load %}`. A template that loads Django's `static` library (the admin's do) gets Django's own.
"""

from functools import lru_cache

from django import template
from django.core.signals import setting_changed
from django.template import defaulttags
from django.templatetags import static as django_static
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.translation import get_language

register = template.Library()
register.tags.update(django_static.register.tags)  # get_static_prefix, get_media_prefix, as Django's

# Exact types whose text never changes (not bool: True would share 1's entry).
_CACHEABLE = (str, SafeString, int)


@lru_cache(maxsize=4096)
def _reverse(view_name, args, kwargs, current_app, urlconf, script_prefix, language):  # the last two: only the key
    return reverse(view_name, urlconf=urlconf, args=args, kwargs=dict(kwargs), current_app=current_app)


@lru_cache(maxsize=1024)
def _static(path, script_prefix):
    return django_static.StaticNode.handle_simple(path)


class URLNode(defaulttags.URLNode):
    def render(self, context):
        args = tuple(arg.resolve(context) for arg in self.args)
        kwargs = tuple(sorted((name, value.resolve(context)) for name, value in self.kwargs.items()))
        view_name = self.view_name.resolve(context)
        if not all(type(value) in _CACHEABLE for value in (view_name, *args, *(value for _, value in kwargs))):
            return super().render(context)
        url = ""
        try:
            url = _reverse(view_name, args, kwargs, *_scope(context))
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


_SCOPE = "clinic_auth.template_urls.scope"


def _scope(context):
    """The current app, URLconf, script prefix and language (translated URL patterns) that every URL of one
    render shares, read once per render."""
    scope = context.render_context.get(_SCOPE)
    if scope is None:
        # Which app's URLs a namespaced name means, as Django's tag decides it.
        request = getattr(context, "request", None)
        current_app = getattr(request, "current_app", _SCOPE)
        if current_app is _SCOPE:
            current_app = getattr(getattr(request, "resolver_match", None), "namespace", None)
        scope = context.render_context[_SCOPE] = (current_app, get_urlconf(), get_script_prefix(), get_language())
    return scope


class StaticNode(django_static.StaticNode):
    @classmethod
    def handle_simple(cls, path):
        if type(path) not in (str, SafeString):
            return super().handle_simple(path)
        return _static(path, get_script_prefix())


@register.tag
def url(parser, token):
    node = defaulttags.url(parser, token)
    return URLNode(node.view_name, node.args, node.kwargs, node.asvar)


@register.tag("static")
def do_static(parser, token):
    return StaticNode.handle_token(parser, token)


def _forget(**kwargs):
    _reverse.cache_clear()
    _static.cache_clear()


setting_changed.connect(_forget)
