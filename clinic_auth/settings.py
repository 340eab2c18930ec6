"""ClinicAuth settings, read from the environment with safe defaults (django-environ).

Every knob an operator may turn is an environment variable documented in README.md; nothing
else in the code reads the environment. Booleans are read one way everywhere (django-environ):
1, true, yes, y, on, ok, in any case, are on; anything else, an empty value included, is off.
"""

import base64
import hashlib
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_list(name: str, default: str) -> list[str]:
    """A comma-separated variable, each item stripped, empty items dropped."""
    return [item.strip() for item in env.str(name, default=default).split(",") if item.strip()]


DEBUG = env.bool("DEBUG", default=False)

# Production mode: served over HTTPS (directly or behind a TLS-terminating proxy).
HTTPS = env.bool("HTTPS", default=False)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if HTTPS:
        raise ImproperlyConfigured("SECRET_KEY must be set when HTTPS=1 (production).")
    SECRET_KEY = _DEV_SECRET_KEY

# The address staff open, e.g. https://clinic.example.org: links in e-mails (reset, invitation)
# are built from it, never from a request's Host header, and the host names, origins and passkey
# relying party below default to it. Required with HTTPS=1.
SITE_URL = env.str("SITE_URL", default="").strip().rstrip("/")
if not SITE_URL:
    if HTTPS:
        raise ImproperlyConfigured("SITE_URL must be set when HTTPS=1 (production), e.g. SITE_URL=https://clinic.example.org")
    SITE_URL = "http://localhost:8000"
_site = urlsplit(SITE_URL)
if _site.scheme not in ("http", "https") or not _site.hostname or _site.path or _site.query or _site.fragment or _site.username:
    raise ImproperlyConfigured(f"SITE_URL must be a scheme and host (and port), like https://clinic.example.org; got {SITE_URL!r}")
if HTTPS and _site.scheme != "https":
    raise ImproperlyConfigured(f"SITE_URL must start with https:// when HTTPS=1; got {SITE_URL!r}")
SITE_HOST = _site.hostname

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", f"{SITE_HOST},127.0.0.1,localhost,[::1],testserver" if not HTTPS else SITE_HOST)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", SITE_URL if HTTPS else "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "django_otp",
    "django_otp_webauthn",
    "mailer",
    "clinics",
    "users",
    "clinic_auth.twofactor",
]

MIDDLEWARE = [
    "clinic_auth.logcontext.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "clinic_auth.middleware.NoStoreMiddleware",
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
    "clinic_auth.passwords.PasswordChecksBusyMiddleware",
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
            # out once. A template that loads Django's `static` library gets Django's own.
            "builtins": ["clinic_auth.urltags"],
        },
    },
]
# Form fields render through Django's own Jinja2 copies of its widget templates: the same HTML, in
# a third of the time (a code field: 0.66 -> 0.21 ms of CPU; the sign-in code page 4.5 -> 3.5-3.9 ms,
# and it is the page a code-guessing attacker hits; measured in-process on 2 cores). The Django
# admin's widgets, which exist only as Django templates, fall back to Django's renderer.
FORM_RENDERER = "clinic_auth.renderers.FormRenderer"

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
# A ping before a kept connection's first query of each request: one query more per request,
# but no error on the first request of each thread after PostgreSQL restarts.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Take the write lock at BEGIN so select_for_update-style verification
    # (django_otp.verify_token) serialises on SQLite as it does on PostgreSQL.
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    if "TEST" not in DATABASES["default"] and DATABASES["default"]["NAME"] not in ("", ":memory:"):
        DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: its estimate counts every per-row subquery of the Users page's counts at a
    # million users, and compiling then costs ~80 ms on a query that runs in a few (bench, part 3).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    # A connection pool per worker process (psycopg's, through Django): the threads of a worker share
    # DB_POOL_MAX_SIZE connections, so a node holds workers x DB_POOL_MAX_SIZE, whatever its threads.
    # Measured against a connection kept per thread in bench/pool_part.py (docs/operations.md).
    DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
    if DB_POOL_MAX_SIZE > 0:
        if DATABASES["default"]["CONN_MAX_AGE"]:
            raise ImproperlyConfigured("DB_POOL_MAX_SIZE replaces DB_CONN_MAX_AGE: set DB_CONN_MAX_AGE=0 (or unset it).")
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "users.User"
# One backend only: a second one would check a wrong password twice. It counts every password
# attempt in the database throttle (users/login_throttle.py) before checking it.
AUTHENTICATION_BACKENDS = ["users.backends.ClinicUserBackend"]

PASSWORD_HASHERS = [
    # Argon2id at OWASP's parameters (clinic_auth/passwords.py); older hashes are upgraded at sign-in.
    "clinic_auth.passwords.ClinicArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Password checks per worker process: this many at once, this many more waiting, each waiting at
# most this long; beyond that the request is answered at once with 503 and Retry-After.
PASSWORD_CHECKS_AT_ONCE = env.int("PASSWORD_CHECKS_AT_ONCE", default=1)
PASSWORD_CHECKS_WAITING = env.int("PASSWORD_CHECKS_WAITING", default=8)
PASSWORD_CHECK_WAIT_SECONDS = env.float("PASSWORD_CHECK_WAIT_SECONDS", default=5.0)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Forgotten password: a reset link works for one hour (and once: it dies with the password it replaces).
PASSWORD_RESET_TIMEOUT = 60 * 60

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sessions: clinics share front-desk computers (ASVS 3.3.2 L2).
SESSION_ENGINE = "users.sessions"  # database sessions; the list of signed-in browsers follows their keys
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
SESSION_ABSOLUTE_TIMEOUT = env.int("SESSION_ABSOLUTE_TIMEOUT", default=12 * 60 * 60)
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
CLINICAUTH_PENDING_LOGIN_TIMEOUT = env.int("PENDING_LOGIN_TIMEOUT", default=10 * 60)
# The idle logout is announced this many seconds before (a dialog with "Stay signed in").
CLINICAUTH_IDLE_WARNING_SECONDS = env.int("IDLE_WARNING_SECONDS", default=120)
# Sensitive actions ask "Confirm it's you" when the factor was last proved longer ago than this.
CLINICAUTH_REAUTH_WINDOW = env.int("REAUTH_WINDOW", default=10 * 60)
# How long one set-up session's secret stays usable before the page shows a fresh one.
CLINICAUTH_SETUP_TIMEOUT = env.int("SETUP_TIMEOUT", default=10 * 60)
CLINICAUTH_RECOVERY_CODE_COUNT = 10
# Fernet keys for TOTP secrets at rest, comma-separated; the first encrypts, all decrypt.
# Without it, a key is derived from SECRET_KEY (fine for development, see README).
CLINICAUTH_TOTP_ENCRYPTION_KEYS = env_list("TOTP_ENCRYPTION_KEYS", "")
CLINICAUTH_TOTP_KEY_FROM_SECRET_KEY = not CLINICAUTH_TOTP_ENCRYPTION_KEYS  # `check --deploy` warns of it
CLINICAUTH_TOTP_ENCRYPTION_KEYS = CLINICAUTH_TOTP_ENCRYPTION_KEYS or [
    base64.urlsafe_b64encode(hashlib.sha256(b"clinicauth-totp-key:" + SECRET_KEY.encode()).digest()).decode()
]
# Passkeys and security keys (django-otp-webauthn), as a second factor only. The relying-party ID
# is a host name (never an IP address); the origins are where the browser shows the app.
OTP_WEBAUTHN_RP_ID = env.str("WEBAUTHN_RP_ID", default=SITE_HOST)
OTP_WEBAUTHN_RP_NAME = CLINICAUTH_PRODUCT_NAME
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("WEBAUTHN_ORIGINS", SITE_URL)
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False  # a second factor: plain USB security keys must work
# How long a passkey prompt's challenge stays valid (the browser's timeout and ours).
OTP_WEBAUTHN_TIMEOUT_SECONDS = env.int("WEBAUTHN_TIMEOUT", default=300)
# Refused keys are audited (AuditEvent "key_refused"), not logged as server errors with a traceback.
OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME = ""
OTP_TOTP_THROTTLE_FACTOR = env.int("OTP_THROTTLE_FACTOR", default=1)
CLINICAUTH_RECOVERY_THROTTLE_FACTOR = OTP_TOTP_THROTTLE_FACTOR
# After this many consecutive wrong codes, code entry locks for CLINICAUTH_CODE_LOCKOUT_SECONDS;
# after CLINICAUTH_CODE_HARD_LOCK_FAILURES it stays locked until an admin resets 2FA
# (NIST SP 800-63B: never more than 100 consecutive failures).
CLINICAUTH_CODE_LOCKOUT_FAILURES = 10
CLINICAUTH_CODE_LOCKOUT_SECONDS = env.int("CODE_LOCKOUT_SECONDS", default=15 * 60)
CLINICAUTH_CODE_HARD_LOCK_FAILURES = 50

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
# One language. Every text still goes through gettext, but with translation off it comes back as
# written, without a look-up of the active language per call (My Profile makes some 80 such calls).
# Django's own en-GB catalogue holds the same text as its source, and dates still take en-GB formats
# (get_language() is LANGUAGE_CODE). Measured with callgrind, instructions per request: My Profile
# 17.3M -> 13.9M, Home 6.23M -> 6.02M. Turn it on with the second language.
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# How mail leaves (EMAIL_BACKEND). With EMAIL_QUEUE on (the default) a request only writes its mail
# to django-mailer's queue table, in its own transaction, and `manage.py runmailer` (a service of
# its own, docs/operations.md) sends it: no response waits on the mail server, so its speed cannot
# tell an existing account from an unknown one, and an outage loses nothing (the queue retries).
CLINICAUTH_EMAIL_QUEUE = env.bool("EMAIL_QUEUE", default=True)
MAILER_EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_BACKEND = "mailer.backend.DbBackend" if CLINICAUTH_EMAIL_QUEUE else MAILER_EMAIL_BACKEND
# A failed send is deferred; `manage.py cleanup` queues it again, at most this many times.
MAILER_EMAIL_MAX_RETRIES = 10
# django-mailer's lock file, by default in the working directory (the read-only code folder in production).
MAILER_LOCK_PATH = env.str("MAILER_LOCK_PATH", default=str(Path(tempfile.gettempdir()) / "clinicauth_send_mail"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# For django.core.mail.backends.filebased.EmailBackend (the browser suite reads links from there).
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "sent-emails"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ClinicAuth <no-reply@clinicauth.invalid>")

# Number of proxies in front of the app whose X-Forwarded-For may be trusted (clinic_auth/http.py).
CLINICAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

CSRF_FAILURE_VIEW = "clinic_auth.errors.csrf_failure"

# Response headers. CSP (django-csp): no inline script or style, nothing from elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Permissions-Policy (django-permissions-policy): no page needs these. WebAuthn is not listed: passkeys need it.
PERMISSIONS_POLICY = {"camera": [], "microphone": [], "geolocation": [], "payment": [], "usb": []}
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if HTTPS:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # a load balancer may probe a node over plain HTTP
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 60 * 60)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if CLINICAUTH_TRUSTED_PROXY_COUNT > 0:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Security events go to the logger "clinicauth.security" as one JSON line each (docs/operations.md).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "clinic_auth.logcontext.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "security": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_context"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"clinicauth.security": {"handlers": ["security"], "level": "INFO", "propagate": False}},
}

# Serve static files from the app folders too, so `make run` and tests need no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
