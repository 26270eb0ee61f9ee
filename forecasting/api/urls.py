from django.urls import path
from rest_framework.routers import SimpleRouter

from forecasting.api import views

router = SimpleRouter()
router.register("forecasts", views.ForecastViewSet, basename="forecast")
router.register("model-versions", views.ModelVersionViewSet, basename="model-version")

urlpatterns = [
    path(
        "ml/fleet-insights/",
        views.FleetInsightsView.as_view(),
        name="api-fleet-insights",
    ),
    path(
        "sites/<slug:code>/forecast/",
        views.SiteForecastView.as_view(),
        name="api-site-forecast",
    ),
    *router.urls,
]
