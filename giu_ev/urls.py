from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api_access.ratelimits import login_rate_limited
from giu_ev import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        login_rate_limited(auth_views.LoginView.as_view()),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Served by giu_ev.health.probe_middleware first; named here for reverse().
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("alerts/", include("stations.alert_urls")),
    path("", include("stations.urls")),
    path("sessions/", include("sessions.urls")),
    path("forecasts/", include("forecasting.urls")),
    path("", include("ocpp_bridge.urls")),
    path("api/", include("giu_ev.api_urls")),
]

# JSON error bodies under /api/, Django's pages elsewhere.
handler404 = "api_access.errors.page_not_found"
handler500 = "api_access.errors.server_error"
