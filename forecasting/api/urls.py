from django.urls import path

from forecasting.api import views

urlpatterns = [
    path(
        "ml/fleet-insights/",
        views.FleetInsightsView.as_view(),
        name="api-fleet-insights",
    ),
]
