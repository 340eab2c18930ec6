from django.urls import path

from bench.peers.views import page
from clinic_auth.urls import urlpatterns as app_urlpatterns

urlpatterns = [path("protected/", page, name="protected"), *app_urlpatterns]
