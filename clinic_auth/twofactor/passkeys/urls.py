from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from .views import (
    AddKeyView,
    AuthenticationBegin,
    AuthenticationComplete,
    RegistrationBegin,
    RegistrationComplete,
    RemoveKeyView,
    RenameKeyView,
)

# Same namespace and names as django_otp_webauthn.urls, so its template tags find them.
webauthn_patterns = (
    [
        path("registration/begin/", RegistrationBegin.as_view(), name="credential-registration-begin"),
        path("registration/complete/", RegistrationComplete.as_view(), name="credential-registration-complete"),
        path("authentication/begin/", AuthenticationBegin.as_view(), name="credential-authentication-begin"),
        path("authentication/complete/", AuthenticationComplete.as_view(), name="credential-authentication-complete"),
        path("jsi18n/", JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]), name="js-i18n-catalog"),
    ],
    "otp_webauthn",
)

urlpatterns = [
    path("accounts/passkeys/", include(webauthn_patterns)),
    path("profile/keys/add/", AddKeyView.as_view(), name="passkey_add"),
    path("profile/keys/<int:pk>/rename/", RenameKeyView.as_view(), name="passkey_rename"),
    path("profile/keys/<int:pk>/remove/", RemoveKeyView.as_view(), name="passkey_remove"),
]
