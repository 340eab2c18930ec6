from django import template
from django.utils.translation import gettext, ngettext

register = template.Library()


@register.filter
def methods_summary(member) -> str:
    """"App, 2 keys" from a member annotated by devices.with_methods (has_app, key_count)."""
    parts = []
    if getattr(member, "has_app", False):
        parts.append(gettext("App"))
    keys = getattr(member, "key_count", 0) or 0
    if keys:
        parts.append(ngettext("%(count)d key", "%(count)d keys", keys) % {"count": keys})
    return ", ".join(parts)
