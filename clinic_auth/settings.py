"""ClinicAuth settings, read from the environment with safe defaults.

Every knob an operator may turn is an environment variable documented in
README.md; nothing else in the code reads ``os.environ``.
"""

import base64
import hashlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# Production mode: served over HTTPS (directly or behind a TLS-terminating proxy).
HTTPS = env_bool("HTTPS", False)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if HTTPS:
        raise ImproperlyConfigured("SECRET_KEY must be set when HTTPS=1 (production).")
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp_webauthn",
    "clinics",
    "users",
    "clinic_auth.twofactor",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "clinic_auth.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "users.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "users.middleware.SignedOutReasonMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "clinic_auth.twofactor.middleware.SessionTimeoutMiddleware",
    "clinic_auth.twofactor.middleware.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "clinic_auth.errors.MethodNotAllowedPageMiddleware",
]

ROOT_URLCONF = "clinic_auth.urls"
WSGI_APPLICATION = "clinic_auth.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "clinic_auth.twofactor.context_processors.two_factor",
            ],
            # {% url %} and {% static %} (no {% load %} needed) as Django's, each distinct URL worked
            # out once (issue 16). A template that loads Django's `static` library gets Django's own.
            # {% extends %} as Django's, the top template's blocks found once (issue 16).
            "builtins": ["clinic_auth.template_urls", "clinic_auth.template_extends"],
        },
    },
]
# Form fields render through Django's own Jinja2 copies of its widget templates: the same HTML, in
# a third of the time (a code field: 0.66 -> 0.21 ms of CPU; the sign-in code page 4.5 -> 3.5-3.9 ms,
# and it is the page a code-guessing attacker hits; issue 16, measured in-process on 2 cores). The
# Django admin's widgets, which exist only as Django templates, fall back to Django's renderer.
FORM_RENDERER = "clinic_auth.renderers.FormRenderer"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
        # A ping before a kept connection's first query of each request: one query more per request,
        # but no error on the first request of each thread after PostgreSQL restarts.
        conn_health_checks=os.environ.get("DB_CONN_HEALTH_CHECKS", "0") == "1",
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Take the write lock at BEGIN so select_for_update-style verification
    # (django_otp.verify_token) serialises on SQLite as it does on PostgreSQL.
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    if "TEST" not in DATABASES["default"] and DATABASES["default"]["NAME"] not in ("", ":memory:"):
        DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: its estimate counts every per-row subquery of the Users page's counts at a
    # million users, and compiling then costs ~80 ms on a query that runs in a few (issue 16, bench).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "users.User"
# One backend only: a second one would check a wrong password twice. Sessions begun under Django's
# ModelBackend (before issue 16) are asked to sign in again once.
AUTHENTICATION_BACKENDS = ["users.backends.ClinicUserBackend"]

PASSWORD_HASHERS = [
    # Django's Argon2 with its default parameters, checked in a low-priority helper process (issue 16).
    "clinic_auth.hashers.LowPriorityArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
PASSWORD_HASH_PROCESSES = int(os.environ.get("PASSWORD_HASH_PROCESSES", "1"))  # checks at once per web worker; 0: one per core
PASSWORD_HASH_NICE = int(os.environ.get("PASSWORD_HASH_NICE", "10"))
PASSWORD_HASH_SCHED_IDLE = os.environ.get("PASSWORD_HASH_SCHED_IDLE", "1") == "1"  # Linux: checks run when the CPU is free
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Forgotten password: a reset link works for one hour (and once: it dies with the password it replaces).
PASSWORD_RESET_TIMEOUT = 60 * 60
# Every "forgot password" answer takes at least this long, so a matching account cannot be timed.
CLINICAUTH_PASSWORD_RESET_RESPONSE_SECONDS = 0.5

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sessions: clinics share front-desk computers (ASVS 3.3.2 L2).
SESSION_ENGINE = "clinic_auth.sessions"  # database sessions, rotated in one UPDATE
SESSION_IDLE_TIMEOUT = int(os.environ.get("SESSION_IDLE_TIMEOUT", str(30 * 60)))
SESSION_ABSOLUTE_TIMEOUT = int(os.environ.get("SESSION_ABSOLUTE_TIMEOUT", str(12 * 60 * 60)))
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
SESSION_SAVE_EVERY_REQUEST = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_NAME = "__Host-clinicauth_session" if HTTPS else "clinicauth_session"
CSRF_COOKIE_NAME = "__Host-clinicauth_csrf" if HTTPS else "clinicauth_csrf"

# Two-factor authentication.
CLINICAUTH_PRODUCT_NAME = "ClinicAuth"
CLINICAUTH_PENDING_LOGIN_TIMEOUT = int(os.environ.get("PENDING_LOGIN_TIMEOUT", str(10 * 60)))
# The idle logout is announced this many seconds before (a dialog with "Stay signed in").
CLINICAUTH_IDLE_WARNING_SECONDS = int(os.environ.get("IDLE_WARNING_SECONDS", "120"))
# Sensitive actions ask "Confirm it's you" when the factor was last proved longer ago than this.
CLINICAUTH_REAUTH_WINDOW = int(os.environ.get("REAUTH_WINDOW", str(10 * 60)))
# How long one set-up session's secret stays usable before the page shows a fresh one.
CLINICAUTH_SETUP_TIMEOUT = int(os.environ.get("SETUP_TIMEOUT", str(10 * 60)))
CLINICAUTH_RECOVERY_CODE_COUNT = 10
# Fernet keys for TOTP secrets at rest, comma-separated; the first encrypts, all decrypt.
# Without it, a key is derived from SECRET_KEY (fine for development, see README).
CLINICAUTH_TOTP_ENCRYPTION_KEYS = env_list("TOTP_ENCRYPTION_KEYS", "") or [
    base64.urlsafe_b64encode(hashlib.sha256(b"clinicauth-totp-key:" + SECRET_KEY.encode()).digest()).decode()
]
# Passkeys and security keys (django-otp-webauthn), as a second factor only. The relying-party ID
# is a host name (never an IP address); the origins are where the browser shows the app.
OTP_WEBAUTHN_RP_ID = os.environ.get("WEBAUTHN_RP_ID", "localhost")
OTP_WEBAUTHN_RP_NAME = CLINICAUTH_PRODUCT_NAME
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("WEBAUTHN_ORIGINS", "http://localhost:8000")
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False  # a second factor: plain USB security keys must work
# How long a passkey prompt's challenge stays valid (the browser's timeout and ours).
OTP_WEBAUTHN_TIMEOUT_SECONDS = int(os.environ.get("WEBAUTHN_TIMEOUT", "300"))
# Refused keys are audited (AuditEvent "key_refused"), not logged as server errors with a traceback.
OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME = ""
OTP_TOTP_THROTTLE_FACTOR = int(os.environ.get("OTP_THROTTLE_FACTOR", "1"))
CLINICAUTH_RECOVERY_THROTTLE_FACTOR = OTP_TOTP_THROTTLE_FACTOR
# After this many consecutive wrong codes, code entry locks for CLINICAUTH_CODE_LOCKOUT_SECONDS;
# after CLINICAUTH_CODE_HARD_LOCK_FAILURES it stays locked until an admin resets 2FA
# (NIST SP 800-63B: never more than 100 consecutive failures).
CLINICAUTH_CODE_LOCKOUT_FAILURES = 10
CLINICAUTH_CODE_LOCKOUT_SECONDS = int(os.environ.get("CODE_LOCKOUT_SECONDS", str(15 * 60)))
CLINICAUTH_CODE_HARD_LOCK_FAILURES = 50

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
# One language. Every text still goes through gettext, but with translation off it comes back as
# written, without a look-up of the active language per call (My Profile makes some 80 such calls).
# Django's own en-GB catalogue holds the same text as its source, and dates still take en-GB formats
# (get_language() is LANGUAGE_CODE). Measured with callgrind, instructions per request: My Profile
# 17.3M -> 13.9M, Home 6.23M -> 6.02M (issue 16). Turn it on with the second language.
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# For django.core.mail.backends.filebased.EmailBackend (the browser suite reads links from there).
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "sent-emails"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "ClinicAuth <no-reply@clinicauth.invalid>")

# Number of proxies in front of the app whose X-Forwarded-For may be trusted.
CLINICAUTH_TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

CSRF_FAILURE_VIEW = "clinic_auth.errors.csrf_failure"

X_FRAME_OPTIONS = "DENY"
if HTTPS:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 60 * 60)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if CLINICAUTH_TRUSTED_PROXY_COUNT > 0:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Serve static files from the app folders too, so `make run` and tests need no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
