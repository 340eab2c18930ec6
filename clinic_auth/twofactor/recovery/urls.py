from django.urls import path

from .views import RecoveryCodesView

urlpatterns = [
    path("accounts/two-factor/recovery-codes/", RecoveryCodesView.as_view(), name="two_factor_recovery_codes"),
]
