from django.urls import path

from stations import alert_views

urlpatterns = [
    path("", alert_views.alert_list, name="alert_list"),
    path(
        "<int:pk>/acknowledge/",
        alert_views.alert_acknowledge_view,
        name="alert_acknowledge",
    ),
]
