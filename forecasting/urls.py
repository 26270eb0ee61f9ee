from django.urls import path

from forecasting import views

urlpatterns = [
    path("", views.forecast_list, name="forecast_list"),
    path("<slug:code>/", views.forecast_site, name="forecast_site"),
]
