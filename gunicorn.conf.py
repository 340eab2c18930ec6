"""Production server settings: `gunicorn -c gunicorn.conf.py clinic_auth.wsgi` (README, Production).

Read from the same environment variables as the app. Gunicorn's own default would take
X-Forwarded-Proto and X-Forwarded-For from any client on loopback; here it trusts them
only from the proxies named in FORWARDED_ALLOW_IPS, and only when TRUSTED_PROXY_COUNT
says there is a proxy at all.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", str(multiprocessing.cpu_count() * 2 + 1)))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then, so a slow leak can never take the app down.
max_requests = 2000
max_requests_jitter = 200

# With no trusted proxy, no client may claim HTTPS or another address through headers.
if int(os.environ.get("TRUSTED_PROXY_COUNT", "0")) > 0:
    forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
else:
    forwarded_allow_ips = ""
    # Gunicorn maps these headers to wsgi.url_scheme itself; with no proxy, ignore them all.
    secure_scheme_headers = {}

# Access log: method, path without the query string (it can carry a `next` or a search for
# a patient's name), status, size, time; no Referer (it has query strings too).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
