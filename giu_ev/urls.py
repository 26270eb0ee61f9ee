from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api_access.ratelimits import login_rate_limited

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        login_rate_limited(auth_views.LoginView.as_view()),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("django_prometheus.urls")),
    path("", include("stations.urls")),
    path("sessions/", include("sessions.urls")),
    path("forecasts/", include("forecasting.urls")),
    path("", include("ocpp_bridge.urls")),
    path("api/", include("giu_ev.api_urls")),
]

# JSON error bodies under /api/, Django's pages elsewhere.
handler404 = "api_access.errors.page_not_found"
handler500 = "api_access.errors.server_error"
