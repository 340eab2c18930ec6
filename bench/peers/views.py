"""The measured page: the same bytes behind every kind of protection."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse

PAGE = b"<!doctype html><title>Protected</title><p>A page behind the login.</p>"


def page(request):
    return HttpResponse(PAGE)


bare_page = login_required(page)  # the baseline: plain Django login_required, no second factor checked
