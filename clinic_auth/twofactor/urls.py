from django.urls import include, path

from . import views

urlpatterns = [
    path("accounts/two-factor/", views.ChallengeView.as_view(), name="two_factor_challenge"),
    path("accounts/confirm/", views.ReauthenticateView.as_view(), name="reauthenticate"),
    path("accounts/two-factor/disable/", views.DisableOwn2FAView.as_view(), name="two_factor_disable_own"),
    path("accounts/two-factor/reminder/dismiss/", views.DismissGraceBannerView.as_view(), name="two_factor_grace_dismiss"),
    path("users/remind/", views.RemindMembersView.as_view(), name="user_remind"),
    path("users/<int:pk>/disable-2fa/", views.MemberDisable2FAView.as_view(), name="user_disable_2fa"),
    path("", include("clinic_auth.twofactor.totp.urls")),
    path("", include("clinic_auth.twofactor.recovery.urls")),
    path("", include("clinic_auth.twofactor.signin_code.urls")),
    path("", include("clinic_auth.twofactor.passkeys.urls")),
]
