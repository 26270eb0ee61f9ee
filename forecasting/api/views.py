import django_filters
from django.core.cache import cache
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, views, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from api_access.filters import UtcDateTimeFilter
from forecasting.api.serializers import (
    FleetInsightsQuerySerializer,
    FleetInsightsSerializer,
    ForecastSerializer,
    ModelVersionSerializer,
    SiteForecastSerializer,
    default_range,
)
from forecasting.insights import CACHE_SECONDS as INSIGHTS_CACHE_SECONDS
from forecasting.insights import __doc__ as INSIGHTS_DEFINITIONS
from forecasting.insights import fleet_insights_cached, latest_session_day
from forecasting.models import (
    Forecast,
    ForecastSource,
    ForecastTask,
    ModelStatus,
    ModelVersion,
)
from forecasting.selectors import site_demand_forecast, tomorrow_energy
from forecasting.services.predicting import FORECAST_HOURS
from stations.models import Site


class FleetInsightsView(views.APIView):
    @extend_schema(
        summary="Per fleet and per vehicle: sessions, energy, durations, idle "
        "time, peak-hour share and the next day's demand",
        description=INSIGHTS_DEFINITIONS,
        parameters=[
            FleetInsightsQuerySerializer,
            OpenApiParameter(
                "fleet", int, many=True, explode=True, description="Fleet ids."
            ),
        ],
        responses={200: FleetInsightsSerializer},
        tags=["ml"],
    )
    def get(self, request: Request) -> Response:
        query = FleetInsightsQuerySerializer(
            data={
                **request.query_params.dict(),
                "fleet": request.query_params.getlist("fleet"),
            }
        )
        query.is_valid(raise_exception=True)
        asked = query.validated_data
        fleets = asked.get("fleet")
        fleet_ids = sorted({f.pk for f in fleets}) if fleets else None

        # The answer is kept as JSON-ready data for as long as the selector keeps
        # its figures: a repeated question then costs one cache read, not the
        # latest-day query plus the serializer over every fleet and vehicle
        # (about 8 ms of CPU for four weeks of ACN data).
        key = "fleet-insights-api:v1:{}:{}:{}".format(
            asked.get("date_from") or "default",
            asked.get("date_to") or "default",
            "all" if fleet_ids is None else ",".join(map(str, fleet_ids)),
        )
        data = cache.get(key)
        if data is None:
            latest = latest_session_day() or timezone.now().date()
            date_from, date_to = default_range(asked, latest)
            insights = fleet_insights_cached(
                date_from=date_from, date_to=date_to, fleet_ids=fleet_ids
            )
            data = FleetInsightsSerializer(insights).data
            cache.set(key, data, INSIGHTS_CACHE_SECONDS)
        return Response(data)


class ModelVersionFilterSet(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(
        queryset=Site.objects.only("id", "code"), to_field_name="code"
    )
    task = django_filters.ChoiceFilter(choices=ForecastTask.choices)
    status = django_filters.ChoiceFilter(choices=ModelStatus.choices)

    class Meta:
        model = ModelVersion
        fields = ["site", "task", "status"]


@extend_schema_view(
    list=extend_schema(summary="Model registry: trained versions and their metrics"),
    retrieve=extend_schema(summary="One model version"),
)
class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ModelVersionSerializer
    filterset_class = ModelVersionFilterSet
    # The ONNX artifact (hundreds of kB) stays in the database.
    queryset = (
        ModelVersion.objects.defer("artifact", "params", "metrics")
        .select_related("site")
        .order_by("site__code", "task", "-version")
    )


class ForecastFilterSet(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(
        queryset=Site.objects.only("id", "code"), to_field_name="code"
    )
    task = django_filters.ChoiceFilter(choices=ForecastTask.choices)
    source = django_filters.ChoiceFilter(choices=ForecastSource.choices)
    is_backtest = django_filters.BooleanFilter()
    model_version = django_filters.NumberFilter(
        min_value=1, max_value=2**63 - 1, help_text="Model version id."
    )
    target_after = UtcDateTimeFilter(field_name="target_hour", lookup_expr="gte")
    target_before = UtcDateTimeFilter(field_name="target_hour", lookup_expr="lt")

    class Meta:
        model = Forecast
        fields = ["site", "task", "source", "is_backtest", "model_version"]


@extend_schema_view(
    list=extend_schema(
        summary="Stored forecast rows (batch predictions and backtests), by target hour"
    ),
    retrieve=extend_schema(summary="One stored forecast row"),
)
class ForecastViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ForecastSerializer
    filterset_class = ForecastFilterSet
    queryset = Forecast.objects.select_related("site").order_by(
        "site__code", "task", "target_hour", "-origin", "id"
    )


class SiteForecastQuerySerializer(serializers.Serializer):
    hours = serializers.IntegerField(
        min_value=1,
        max_value=FORECAST_HOURS,
        default=FORECAST_HOURS,
        help_text="Hours ahead, from the site's latest data.",
    )


class SiteForecastView(views.APIView):
    @extend_schema(
        summary="A site's demand forecast for the next hours, with tomorrow's total",
        description=(
            "Energy (kWh) and vehicles plugged in per hour with the 80% interval "
            "(p10..p90), from the site's latest data on. `is_baseline` is true when "
            "no trained model is active and the seasonal-naive baseline answers. "
            "`tomorrow` is the site-local day after the latest data."
        ),
        parameters=[SiteForecastQuerySerializer],
        responses={200: SiteForecastSerializer},
        tags=["forecasts"],
    )
    def get(self, request: Request, code: str) -> Response:
        site = get_object_or_404(Site, code=code)
        query = SiteForecastQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)

        forecast = site_demand_forecast(site=site, hours=query.validated_data["hours"])
        tomorrow = tomorrow_energy(site=site)

        forecast.tomorrow = tomorrow
        return Response(SiteForecastSerializer(forecast).data)
