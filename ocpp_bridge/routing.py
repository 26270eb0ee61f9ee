"""WebSocket routes: chargers under /ocpp/, live operator pages under /ws/."""

websocket_urlpatterns: list = []
