from rest_framework.routers import SimpleRouter

from stations.api import views

router = SimpleRouter()
router.register("sites", views.SiteViewSet, basename="site")
router.register("charge-points", views.ChargePointViewSet, basename="charge-point")
router.register("connectors", views.ConnectorViewSet, basename="connector")
router.register("status-events", views.StatusEventViewSet, basename="status-event")

urlpatterns = router.urls
