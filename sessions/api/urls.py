from django.urls import path
from rest_framework.routers import SimpleRouter

from sessions.api import views

router = SimpleRouter()
router.register("id-tokens", views.IdTokenViewSet, basename="id-token")
router.register("fleets", views.FleetViewSet, basename="fleet")
router.register("vehicles", views.VehicleViewSet, basename="vehicle")
router.register("sessions", views.ChargingSessionViewSet, basename="session")

urlpatterns = [
    path(
        "sessions/<int:session_id>/meter-samples/",
        views.SessionMeterSampleList.as_view(),
        name="session-meter-samples",
    ),
    *router.urls,
]
