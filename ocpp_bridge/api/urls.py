from django.urls import path

from ocpp_bridge.api import views
from ocpp_bridge.commands import ACTIONS

urlpatterns = [
    *(
        path(
            f"charge-points/<str:identity>/commands/{action}/",
            views.command_view_for(action).as_view(),
            name=f"charge-point-command-{action}",
        )
        for action in sorted(ACTIONS)
    ),
    path(
        "charge-points/<str:identity>/commands/<str:action>/",
        views.UnknownCommandView.as_view(),
        name="charge-point-command",
    ),
]
