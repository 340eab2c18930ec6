from django import template

from users import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def signed_in_browsers(context, user) -> list:
    """The browsers `user` is signed in with (selectors.signed_in_sessions), this one first: for the
    pages that list them, whichever app's view renders the page."""
    request = context["request"]
    return selectors.signed_in_sessions(user, current_session_key=request.session.session_key)
