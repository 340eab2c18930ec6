"""WSGI entry for the peer sites: DJANGO_SETTINGS_MODULE names the peer (bench.peers.*_site)."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
