from django.urls import path

from forecasting import insight_views

urlpatterns: list = [
    path(
        "fleet-insights/",
        insight_views.fleet_insights_page,
        name="fleet_insights",
    ),
]
