from django.urls import path

from .views import SetupView

urlpatterns = [
    path("accounts/two-factor/setup/", SetupView.as_view(), name="two_factor_setup"),
]
