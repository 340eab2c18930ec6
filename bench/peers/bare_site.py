"""The baseline: plain Django, the page behind login_required and nothing else."""

from bench.peers.base import *  # noqa: F401,F403
from bench.peers.base import BASE_APPS, BASE_MIDDLEWARE

INSTALLED_APPS = BASE_APPS
MIDDLEWARE = BASE_MIDDLEWARE
LOGIN_URL = "/login/"
ROOT_URLCONF = "bench.peers.bare_urls"
