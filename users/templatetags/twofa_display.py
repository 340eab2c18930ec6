from django import template
from django.urls import reverse

from clinic_auth.twofactor import texts

register = template.Library()

# A pk that no URL prefix contains; member_url swaps it for each member's.
_PLACEHOLDER_PK = 7_919_000_000_000_000_001


@register.filter
def methods_summary(member) -> str:
    """"App, 2 keys" from a member annotated by devices.with_methods (has_app, key_count)."""
    return texts.methods_summary(has_app=getattr(member, "has_app", False), key_count=getattr(member, "key_count", 0) or 0)


@register.simple_tag(takes_context=True)
def member_url(context, pk: int) -> str:
    """reverse("user_detail", args=[pk]), reversed once per render rather than once per row."""
    cache = context.render_context
    if "member_url" not in cache:
        cache["member_url"] = reverse("user_detail", args=[_PLACEHOLDER_PK]).split(str(_PLACEHOLDER_PK))
    return str(pk).join(cache["member_url"])
