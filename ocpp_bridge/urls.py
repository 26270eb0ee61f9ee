from django.urls import path

from ocpp_bridge import views

urlpatterns = [
    path(
        "stations/<str:identity>/frames/",
        views.frame_log,
        name="ocpp_frame_log",
    ),
    path(
        "stations/<str:identity>/commands/<str:action>/",
        views.command_post,
        name="ocpp_command",
    ),
]
