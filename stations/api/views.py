from django.db.models import Count, IntegerField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from api_access.pagination import StatusEventCursorPagination
from sessions.models import ChargingSession
from stations.api.filters import (
    ChargePointFilterSet,
    ConnectorFilterSet,
    StatusEventFilterSet,
)
from stations.api.serializers import (
    ChargePointSerializer,
    ConnectorSerializer,
    SiteSerializer,
    StatusEventSerializer,
)
from stations.models import ChargePoint, Connector, Site, StatusEvent


@extend_schema_view(
    list=extend_schema(summary="List sites"),
    retrieve=extend_schema(summary="One site by code"),
)
class SiteViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SiteSerializer
    lookup_field = "code"
    # No NUL in the URL: PostgreSQL cannot compare one (a 404, not a 500).
    lookup_value_regex = "[^/\x00]+"
    queryset = Site.objects.annotate(
        charge_point_count=Count("charge_points")
    ).order_by("name", "id")


def _active_sessions():
    return Coalesce(
        Subquery(
            ChargingSession.objects.filter(
                charge_point=OuterRef("pk"), stopped_at__isnull=True
            )
            .order_by()
            .values("charge_point")
            .annotate(n=Count("*"))
            .values("n"),
            output_field=IntegerField(),
        ),
        0,
    )


@extend_schema_view(
    list=extend_schema(
        summary="List charge points with live status and connectors",
    ),
    retrieve=extend_schema(summary="One charge point by identity"),
)
class ChargePointViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ChargePointSerializer
    filterset_class = ChargePointFilterSet
    lookup_field = "identity"
    # No NUL in the URL: PostgreSQL cannot compare one (a 404, not a 500).
    lookup_value_regex = "[^/\x00]+"
    queryset = (
        ChargePoint.objects.select_related("site")
        .prefetch_related(
            Prefetch("connectors", queryset=Connector.objects.order_by("number"))
        )
        .annotate(active_session_count=_active_sessions())
        .order_by("identity")
    )


@extend_schema_view(
    list=extend_schema(summary="List connectors"),
    retrieve=extend_schema(summary="One connector"),
)
class ConnectorViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ConnectorSerializer
    filterset_class = ConnectorFilterSet
    queryset = Connector.objects.select_related("charge_point").order_by(
        "charge_point__identity", "number"
    )


@extend_schema_view(
    list=extend_schema(
        summary="Status history (newest first, cursor pages)",
    ),
    retrieve=extend_schema(summary="One status event"),
)
class StatusEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = StatusEventSerializer
    filterset_class = StatusEventFilterSet
    pagination_class = StatusEventCursorPagination
    queryset = StatusEvent.objects.select_related("charge_point")
