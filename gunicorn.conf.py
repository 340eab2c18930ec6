"""Production server settings: `gunicorn -c gunicorn.conf.py clinic_auth.wsgi` (README, Production).

Read from the same environment variables as the app. Gunicorn's own default would take
X-Forwarded-Proto and X-Forwarded-For from any client on loopback; here it trusts them
only from the proxies named in FORWARDED_ALLOW_IPS, and only when TRUSTED_PROXY_COUNT
says there is a proxy at all.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
# Threaded workers (issue 16): a password check (Argon2, ~0.1-0.35 s) runs in a background-priority
# helper process of each worker (clinic_auth/hashers.py), so the worker's threads keep serving page
# views meanwhile. With sync workers every sign-in held a whole process and page views queued behind
# it (page p99 388 ms under the bench's mixed load). Sign-ins wait for the CPU behind page views, so
# during an 8 a.m. rush many of them wait at once, each holding a thread: with 4 threads a worker had
# none left for page views (page p99 ~2 s), with 16 it has. Measured on a 2-core machine against
# 3 x 16 (page p99 35-50 ms): 2 x 16, 5 x 8, 4 x 4, 6 x 4, 8 x 2 threads and 8, 12 or 16 sync
# workers were all worse (p99 58-323 ms), as were a 1 or 2 ms GIL switch interval instead of 5.
# One process per core plus one. Measured in `make bench` (part 4 and README "Benchmark"). A thread
# that has served a request keeps its own database connection (DB_CONN_MAX_AGE): workers x threads
# must fit PostgreSQL's max_connections.
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
else:
    forwarded_allow_ips = ""
    # Gunicorn maps these headers to wsgi.url_scheme itself; with no proxy, ignore them all.
    secure_scheme_headers = {}

# Access log: method, path without the query string (it can carry a `next` or a search for
# a patient's name), status, size, time; no Referer (it has query strings too).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"


def post_worker_init(worker):
    """Start the worker's password-check helper now, so the first sign-in does not wait for it."""
    from clinic_auth import hashers

    hashers.start_helper()
