"""The app's URLs, with the home page behind django-otp's otp_required instead of our middleware."""

from django.urls import path
from django_otp.decorators import otp_required

from clinic_auth.urls import urlpatterns as app_urlpatterns
from users import views as user_views

urlpatterns = [
    path("home/", otp_required(user_views.home), name="home"),
    *[pattern for pattern in app_urlpatterns if getattr(pattern, "name", None) != "home"],
]
