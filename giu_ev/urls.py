from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("django_prometheus.urls")),
    path("", include("stations.urls")),
    path("sessions/", include("sessions.urls")),
    path("forecasts/", include("forecasting.urls")),
    path("", include("ocpp_bridge.urls")),
]
