from django.urls import path

from bench.peers.views import bare_page

urlpatterns = [path("protected/", bare_page, name="protected")]
