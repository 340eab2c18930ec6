from django.urls import path

from .views import MemberSigninCodeView

urlpatterns = [
    path("users/<int:pk>/signin-code/", MemberSigninCodeView.as_view(), name="user_signin_code"),
]
