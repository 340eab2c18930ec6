from django import template
from django.urls import reverse
from django.utils.translation import gettext, ngettext

register = template.Library()

# A pk that no URL prefix contains; member_url swaps it for each member's.
_PLACEHOLDER_PK = 7_919_000_000_000_000_001


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


@register.simple_tag(takes_context=True)
def member_url(context, member) -> str:
    """reverse("user_detail", args=[member.pk]), reversed once per render rather than once per row."""
    cache = context.render_context
    if "member_url" not in cache:
        cache["member_url"] = reverse("user_detail", args=[_PLACEHOLDER_PK]).split(str(_PLACEHOLDER_PK))
    return str(member.pk).join(cache["member_url"])
