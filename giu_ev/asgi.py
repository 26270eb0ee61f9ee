"""ASGI entry point: HTTP to Django, /ocpp/... and /ws/... to Channels consumers."""

import gc
import os
from importlib import import_module

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giu_ev.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from ocpp_bridge.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# Garbage collection in a process that holds thousands of charger sockets.
# With the defaults, objects that live a few tens of milliseconds (a frame
# being answered) were promoted often enough to set off a full collection
# every 3 s at 1,000 MeterValues/s, each a 200-250 ms pause walking every
# object of the process (1,000 chargers on the 2-core machine; p99 answer
# latency 455-727 ms). Objects loaded at start-up (Django, the URLconf and
# the views it imports) are frozen out of collections, and a young
# generation 70 times larger lets short-lived objects die before they are
# promoted: no full collection during the steady phase, p99 98 ms
# (docs/ocpp-testing.md).
GC_YOUNG_THRESHOLD = 50_000
import_module(settings.ROOT_URLCONF)  # imports the views now, to freeze them too
gc.collect()
gc.freeze()
gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
