"""Everything under /api/: the REST API, its schema and its docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"
    ),
    path("", include("stations.api.urls")),
    path("", include("sessions.api.urls")),
    path("", include("forecasting.api.urls")),
    path("", include("ocpp_bridge.api.urls")),
]
