"""django-two-factor-auth's URLs, and the page behind its OTPRequiredMixin."""

from django.urls import include, path
from django.views import View
from two_factor.urls import urlpatterns as tf_urls
from two_factor.views import OTPRequiredMixin

from bench.peers.views import page


class ProtectedView(OTPRequiredMixin, View):
    def get(self, request):
        return page(request)


urlpatterns = [
    path("", include(tf_urls)),
    path("protected/", ProtectedView.as_view(), name="protected"),
]
