from django.urls import path

from sessions import views

urlpatterns = [
    path("", views.session_list, name="session_list"),
    path("export.csv", views.session_export, name="session_export"),
    path("<int:pk>/", views.session_detail, name="session_detail"),
]
