from django.urls import path

from stations import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("stations/", views.station_list, name="station_list"),
    path("stations/<str:identity>/", views.station_detail, name="station_detail"),
]
