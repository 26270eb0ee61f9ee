"""WebSocket routes: chargers under /ocpp/, live operator pages under /ws/."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path, re_path

from ocpp_bridge.auth import OcppHandshakeMiddleware
from ocpp_bridge.consumers import ChargePointConsumer, LiveConsumer

# Chargers send no Origin header and authenticate with HTTP Basic; the live
# feed is for logged-in staff in a browser, so it gets sessions and an Origin
# check. The charger route matches any id: the identity is read from the raw
# path by the middleware (ids may hold an encoded slash); a charger that does
# not append its id (/ocpp, /ocpp/) is refused there as bad_identity and
# recorded, rather than failing routing with a server error.
websocket_urlpatterns: list = [
    re_path(
        r"^ocpp(/[\s\S]*)?$", OcppHandshakeMiddleware(ChargePointConsumer.as_asgi())
    ),
    path(
        "ws/live/",
        AllowedHostsOriginValidator(AuthMiddlewareStack(LiveConsumer.as_asgi())),
    ),
]
