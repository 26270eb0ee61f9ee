from django.urls import path

from forecasting import insight_views, views

urlpatterns = [
    path("", views.forecast_list, name="forecast_list"),
    # Before the site pattern: "fleet-insights" would otherwise read as a site code.
    path("fleet-insights/", insight_views.fleet_insights_page, name="fleet_insights"),
    path("<slug:code>/", views.forecast_site, name="forecast_site"),
]
