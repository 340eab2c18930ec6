from django.contrib import admin
from django.urls import include, path

from clinic_auth.twofactor import views as twofactor_views
from clinics import views as clinic_views
from users import membership_views
from users import views as user_views

admin.site.site_header = "ClinicAuth administration"

urlpatterns = [
    path("", user_views.ClinicLoginView.as_view(), name="root"),
    path("accounts/login/", user_views.ClinicLoginView.as_view(), name="login"),
    path("accounts/logout/", user_views.ClinicLogoutView.as_view(), name="logout"),
    path("accounts/switch-user/", user_views.SignInAsSomeoneElseView.as_view(), name="sign_in_as_someone_else"),
    path("accounts/confirm/", user_views.ReauthenticateView.as_view(), name="reauthenticate"),
    path("profile/keys/add/", user_views.AddKeyView.as_view(), name="passkey_add"),
    path("profile/sessions/end/", user_views.EndOwnSessionsView.as_view(), name="sessions_end_own"),
    path("users/<int:pk>/sessions/end/", user_views.EndMemberSessionsView.as_view(), name="sessions_end_member"),
    path("accounts/session/keep-alive/", user_views.KeepAliveView.as_view(), name="session_keep_alive"),
    path("accounts/two-factor/", twofactor_views.ChallengeView.as_view(), name="two_factor_challenge"),
    path("accounts/two-factor/setup/", twofactor_views.SetupView.as_view(), name="two_factor_setup"),
    path(
        "accounts/two-factor/recovery-codes/",
        twofactor_views.RecoveryCodesView.as_view(),
        name="two_factor_recovery_codes",
    ),
    path(
        "accounts/two-factor/reminder/dismiss/",
        twofactor_views.DismissGraceBannerView.as_view(),
        name="two_factor_grace_dismiss",
    ),
    path("accounts/passkeys/", include("clinic_auth.twofactor.passkeys")),
    path("profile/keys/<int:pk>/rename/", user_views.RenameKeyView.as_view(), name="passkey_rename"),
    path("profile/keys/<int:pk>/remove/", user_views.RemoveKeyView.as_view(), name="passkey_remove"),
    path("accounts/two-factor/disable/", user_views.DisableOwn2FAView.as_view(), name="two_factor_disable_own"),
    path("home/", user_views.home, name="home"),
    path("profile/", user_views.ProfileView.as_view(), name="profile"),
    path("profile/password/", user_views.ChangePasswordView.as_view(), name="password_change"),
    path("clinics/<int:pk>/settings/", clinic_views.ClinicSettingsView.as_view(), name="clinic_settings"),
    path("clinics/<int:pk>/edit/", clinic_views.ClinicEditView.as_view(), name="clinic_edit"),
    path("clinics/<int:pk>/audit-log/", clinic_views.AuditLogView.as_view(), name="clinic_audit_log"),
    path("clinics/<int:pk>/audit-log.csv", clinic_views.AuditLogCSVView.as_view(), name="clinic_audit_log_csv"),
    path("users/", user_views.UserListView.as_view(), name="user_list"),
    path("users/remind/", user_views.RemindMembersView.as_view(), name="user_remind"),
    path("users/<int:pk>/", user_views.UserDetailView.as_view(), name="user_detail"),
    path("users/<int:pk>/disable-2fa/", user_views.UserDisable2FAView.as_view(), name="user_disable_2fa"),
    # Issue 17: invitations, forgotten password, leavers and roles (users/membership_views.py).
    path("users/add/", membership_views.InviteMemberView.as_view(), name="user_invite"),
    path("users/<int:pk>/invitation/resend/", membership_views.InvitationResendView.as_view(), name="user_invitation_resend"),
    path("users/<int:pk>/invitation/revoke/", membership_views.InvitationRevokeView.as_view(), name="user_invitation_revoke"),
    path("users/<int:pk>/deactivate/", membership_views.MemberDeactivateView.as_view(), name="user_deactivate"),
    path("users/<int:pk>/reactivate/", membership_views.MemberReactivateView.as_view(), name="user_reactivate"),
    path("users/<int:pk>/role/", membership_views.MemberChangeRoleView.as_view(), name="user_change_role"),
    path("accounts/invitation/<str:token>/", membership_views.InvitationAcceptView.as_view(), name="invitation_accept"),
    path("accounts/password-reset/", membership_views.ForgotPasswordView.as_view(), name="password_reset"),
    path("accounts/password-reset/sent/", membership_views.ForgotPasswordDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/password-reset/<uidb64>/<token>/",
        membership_views.ResetPasswordView.as_view(),
        name="password_reset_confirm",
    ),
    path("users/<int:pk>/signin-code/", user_views.UserSigninCodeView.as_view(), name="user_signin_code"),
    path("admin/login/", user_views.admin_login),
    path("admin/", admin.site.urls),
]
