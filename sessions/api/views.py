from django.db.models import Count
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api_access.pagination import MeterSampleCursorPagination
from sessions import fleet_services as services
from sessions.api.filters import ChargingSessionApiFilterSet, MeterSampleFilterSet
from sessions.api.serializers import (
    METER_SAMPLE_COLUMNS,
    SESSION_LIST_COLUMNS,
    ChargingSessionSerializer,
    FleetSerializer,
    IdTokenCreateSerializer,
    IdTokenSerializer,
    MeterSampleSerializer,
    VehicleSerializer,
    meter_sample_rows,
    session_list_rows,
)
from sessions.models import ChargingSession, Fleet, IdToken, MeterSample, Vehicle


@extend_schema_view(
    list=extend_schema(summary="List id tokens"),
    retrieve=extend_schema(summary="One id token"),
    create=extend_schema(
        summary="Register an id token",
        request=IdTokenCreateSerializer,
        responses={201: IdTokenSerializer},
    ),
)
class IdTokenViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = IdToken.objects.order_by("value", "id")
    serializer_class = IdTokenSerializer
    filterset_fields = ["status", "kind", "vehicle"]

    def get_serializer_class(self):
        if self.action == "create":
            return IdTokenCreateSerializer
        return IdTokenSerializer

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        token = services.id_token_create(**serializer.validated_data)

        return Response(IdTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Block an id token (refused at the next Authorize)",
        request=None,
        responses={200: IdTokenSerializer},
    )
    @action(detail=True, methods=["post"])
    def block(self, request: Request, pk=None) -> Response:
        token = services.id_token_block(id_token=self.get_object())
        return Response(IdTokenSerializer(token).data)

    @extend_schema(
        summary="Accept a blocked id token again",
        request=None,
        responses={200: IdTokenSerializer},
    )
    @action(detail=True, methods=["post"])
    def unblock(self, request: Request, pk=None) -> Response:
        token = services.id_token_unblock(id_token=self.get_object())
        return Response(IdTokenSerializer(token).data)


@extend_schema_view(
    list=extend_schema(summary="List fleets"),
    retrieve=extend_schema(summary="One fleet"),
    create=extend_schema(summary="Create a fleet"),
    update=extend_schema(summary="Replace a fleet"),
    partial_update=extend_schema(summary="Change a fleet"),
    destroy=extend_schema(summary="Delete a fleet (its vehicles stay, fleetless)"),
)
class FleetViewSet(viewsets.ModelViewSet):
    serializer_class = FleetSerializer
    queryset = (
        Fleet.objects.select_related("site")
        .annotate(vehicle_count=Count("vehicles"))
        .order_by("name", "id")
    )

    def perform_create(self, serializer: FleetSerializer) -> None:
        fleet = services.fleet_create(**serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=fleet.pk)

    def perform_update(self, serializer: FleetSerializer) -> None:
        fleet = services.fleet_update(
            fleet=serializer.instance, **serializer.validated_data
        )
        serializer.instance = self.get_queryset().get(pk=fleet.pk)

    def perform_destroy(self, instance: Fleet) -> None:
        services.fleet_delete(fleet=instance)


@extend_schema_view(
    list=extend_schema(summary="List vehicles"),
    retrieve=extend_schema(summary="One vehicle"),
    create=extend_schema(summary="Add a vehicle"),
    update=extend_schema(summary="Replace a vehicle"),
    partial_update=extend_schema(summary="Change a vehicle"),
    destroy=extend_schema(summary="Delete a vehicle (its sessions stay)"),
)
class VehicleViewSet(viewsets.ModelViewSet):
    serializer_class = VehicleSerializer
    queryset = Vehicle.objects.order_by("name", "id")
    filterset_fields = ["fleet"]

    def perform_create(self, serializer: VehicleSerializer) -> None:
        serializer.instance = services.vehicle_create(**serializer.validated_data)

    def perform_update(self, serializer: VehicleSerializer) -> None:
        serializer.instance = services.vehicle_update(
            vehicle=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: Vehicle) -> None:
        services.vehicle_delete(vehicle=instance)


@extend_schema_view(
    list=extend_schema(summary="List charging sessions, newest first"),
    retrieve=extend_schema(summary="One charging session"),
)
class ChargingSessionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ChargingSessionSerializer
    filterset_class = ChargingSessionApiFilterSet
    queryset = ChargingSession.objects.select_related(
        "charge_point__site", "vehicle"
    ).order_by("-started_at", "-id")

    def list(self, request: Request, *args, **kwargs) -> Response:
        sessions = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(sessions.values_list(*SESSION_LIST_COLUMNS))
        return self.get_paginated_response(session_list_rows(page))


@extend_schema(
    summary="Meter samples of a session, in time order (cursor pages)",
    parameters=[
        OpenApiParameter(
            "session_id", int, OpenApiParameter.PATH, description="Session id."
        )
    ],
)
class SessionMeterSampleList(generics.ListAPIView):
    serializer_class = MeterSampleSerializer
    filterset_class = MeterSampleFilterSet
    pagination_class = MeterSampleCursorPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MeterSample.objects.none()
        session = get_object_or_404(
            ChargingSession.objects.only("id"), pk=self.kwargs["session_id"]
        )
        return MeterSample.objects.filter(session=session)

    def list(self, request: Request, *args, **kwargs) -> Response:
        samples = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(samples.values(*METER_SAMPLE_COLUMNS))
        return self.get_paginated_response(meter_sample_rows(page))
