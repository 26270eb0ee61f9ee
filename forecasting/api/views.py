from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import views
from rest_framework.request import Request
from rest_framework.response import Response

from forecasting.api.serializers import (
    FleetInsightsQuerySerializer,
    FleetInsightsSerializer,
    default_range,
)
from forecasting.insights import __doc__ as INSIGHTS_DEFINITIONS
from forecasting.insights import fleet_insights, latest_session_day


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
        latest = latest_session_day() or timezone.now().date()
        date_from, date_to = default_range(query.validated_data, latest)

        fleets = query.validated_data.get("fleet")
        insights = fleet_insights(
            date_from=date_from,
            date_to=date_to,
            fleet_ids=[f.pk for f in fleets] if fleets else None,
        )

        return Response(FleetInsightsSerializer(insights).data)
