"""The site's URLs: each app's own, then the Django admin (for operators)."""

from django.contrib import admin
from django.urls import include, path

from clinic_auth.health import healthz

admin.site.site_header = "ClinicAuth administration"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", include("users.urls")),
    path("", include("clinics.urls")),
    path("", include("clinic_auth.twofactor.urls")),
    path("admin/", admin.site.urls),
]
