"""Production server settings: `gunicorn -c gunicorn.conf.py clinic_auth.wsgi` (README, Production).

Read from the same environment variables as the app. Gunicorn's own default would take
X-Forwarded-Proto and X-Forwarded-For from any client on loopback; here it trusts them
only from the proxies named in FORWARDED_ALLOW_IPS, and only when TRUSTED_PROXY_COUNT
says there is a proxy at all.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
# Threaded workers: a password check (Argon2, ~40 ms of one core) holds its thread, not the whole
# process, so the worker's other threads keep serving page views meanwhile; each worker runs at most
# PASSWORD_CHECKS_AT_ONCE checks at once (clinic_auth/passwords.py). One process per core plus one.
# A thread that has served a request keeps its own database connection (DB_CONN_MAX_AGE):
# workers x threads must fit PostgreSQL's max_connections. Measured in `make bench` (part 4).
workers = int(os.environ.get("WEB_CONCURRENCY", str(multiprocessing.cpu_count() + 1)))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then, so a slow leak can never take the app down; at ~100 requests/s per worker, every
# 2,000 requests restarted one every 20 s or so, and each restart's boot took CPU from page views.
max_requests = 20000
max_requests_jitter = 2000

# With no trusted proxy, no client may claim HTTPS or another address through headers.
if int(os.environ.get("TRUSTED_PROXY_COUNT", "0")) > 0:
    forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    # Only the header the proxy sets (deploy/nginx/clinicauth.conf); X-Forwarded-Ssl and the like
    # would pass through from the client.
    secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
else:
    forwarded_allow_ips = ""
    # Gunicorn maps these headers to wsgi.url_scheme itself; with no proxy, ignore them all.
    secure_scheme_headers = {}

# Access log: method, path without the query string (it can carry a `next` or a search for
# a patient's name), status, size, time; no Referer (it has query strings too).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
# No control socket (gunicorn's $HOME/.gunicorn/gunicorn.ctl): nothing here uses it, and under
# systemd's ProtectHome it cannot be made.
control_socket_disable = True



def on_starting(server):
    """Refuse to start when `manage.py check --deploy` finds an error, before any worker serves: above
    all a stored authenticator secret that TOTP_ENCRYPTION_KEYS cannot decrypt (one clear message
    naming the variable, not a 500 at someone's sign-in). Takes about 30 s per million authenticators.

    In a process of its own: the workers are forked from this one, and must inherit no database
    connection or connection pool from it."""
    import subprocess
    import sys
    from pathlib import Path

    manage = Path(__file__).resolve().with_name("manage.py")
    checked = subprocess.run([sys.executable, str(manage), "check", "--deploy", "--fail-level", "ERROR"])
    if checked.returncode != 0:
        raise SystemExit(f"manage.py check --deploy failed (exit status {checked.returncode}): not starting.")
