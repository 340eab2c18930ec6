from django.urls import path

from . import membership_views, views

urlpatterns = [
    path("", views.ClinicLoginView.as_view(), name="root"),
    path("accounts/login/", views.ClinicLoginView.as_view(), name="login"),
    path("accounts/logout/", views.ClinicLogoutView.as_view(), name="logout"),
    path("accounts/switch-user/", views.SignInAsSomeoneElseView.as_view(), name="sign_in_as_someone_else"),
    path("accounts/session/keep-alive/", views.KeepAliveView.as_view(), name="session_keep_alive"),
    path("profile/sessions/end/", views.EndOwnSessionsView.as_view(), name="sessions_end_own"),
    path("users/<int:pk>/sessions/end/", views.EndMemberSessionsView.as_view(), name="sessions_end_member"),
    path("home/", views.home, name="home"),
    path("profile/", views.ProfileView.as_view(), name="profile"),
    path("profile/password/", views.ChangePasswordView.as_view(), name="password_change"),
    path("users/", views.UserListView.as_view(), name="user_list"),
    path("users/<int:pk>/", views.UserDetailView.as_view(), name="user_detail"),
    # Invitations, forgotten passwords, leavers and roles (membership_views.py).
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
    # The Django admin's own password-only login would skip the code: it sends to ours.
    path("admin/login/", views.admin_login),
]
