"""allauth's URLs, and the page behind login_required (allauth's MFA is part of the login)."""

from django.urls import include, path

from bench.peers.views import bare_page

urlpatterns = [
    path("accounts/", include("allauth.urls")),
    path("protected/", bare_page, name="protected"),
]
