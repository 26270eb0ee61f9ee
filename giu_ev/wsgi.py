"""WSGI entry point, for HTTP-only workers (gunicorn) beside Daphne."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giu_ev.settings")
application = get_wsgi_application()
