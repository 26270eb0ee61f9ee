from datetime import timedelta

from rest_framework import serializers

from forecasting.insights import MAX_RANGE_DAYS
from forecasting.models import Forecast, ModelVersion
from sessions.models import Fleet


class FleetInsightsQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField(
        required=False,
        help_text="First day (site local), inclusive. Default: 27 days before "
        "date_to (four weeks in all).",
    )
    date_to = serializers.DateField(
        required=False,
        help_text="Last day (site local), inclusive. Default: the day of the "
        "latest session in the portal.",
    )
    fleet = serializers.PrimaryKeyRelatedField(
        queryset=Fleet.objects.all(),
        many=True,
        required=False,
        help_text="Fleet ids (repeat the parameter for several). Default: all "
        "fleets, and vehicles without a fleet.",
    )

    def validate(self, attrs: dict) -> dict:
        date_to = attrs.get("date_to")
        date_from = attrs.get("date_from")
        if date_from and date_to and date_to < date_from:
            raise serializers.ValidationError({"date_to": "Before date_from."})
        if date_from and date_to and (date_to - date_from).days >= MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"date_to": f"The range may span at most {MAX_RANGE_DAYS} days."}
            )
        return attrs


def default_range(attrs: dict, latest) -> tuple:
    date_to = attrs.get("date_to") or (
        attrs["date_from"] + timedelta(days=27) if attrs.get("date_from") else latest
    )
    date_from = attrs.get("date_from") or date_to - timedelta(days=27)
    return date_from, date_to


class NextDayDemandSerializer(serializers.Serializer):
    day = serializers.DateField()
    energy_kwh = serializers.FloatField(
        allow_null=True, help_text="Predicted energy; null when there is no basis."
    )
    is_baseline = serializers.BooleanField(
        help_text="True: the labelled baseline, not a trained model."
    )
    method = serializers.CharField(
        help_text="baseline_same_weekday_4w, site_forecast_share, or mixed."
    )
    label = serializers.CharField(help_text="What the number is, for a person.")
    model_version = serializers.CharField(allow_null=True)
    basis_days = serializers.IntegerField(
        help_text="Days of history the baseline averages."
    )
    note = serializers.CharField(allow_blank=True)


class ChargingFiguresSerializer(serializers.Serializer):
    sessions = serializers.IntegerField()
    energy_kwh = serializers.FloatField()
    sessions_without_energy = serializers.IntegerField()
    avg_duration_h = serializers.FloatField(allow_null=True)
    avg_idle_h = serializers.FloatField(
        allow_null=True,
        help_text="Mean hours plugged in without charging, over the sessions "
        "where the end of charging is known.",
    )
    idle_known_sessions = serializers.IntegerField()
    peak_energy_kwh = serializers.FloatField()
    peak_share = serializers.FloatField(
        allow_null=True, help_text="peak_energy_kwh / energy_kwh (0..1)."
    )


class VehicleInsightSerializer(serializers.Serializer):
    vehicle_id = serializers.IntegerField()
    name = serializers.CharField()
    figures = ChargingFiguresSerializer()
    next_day = NextDayDemandSerializer()


class FleetInsightSerializer(serializers.Serializer):
    fleet_id = serializers.IntegerField(
        allow_null=True, help_text="Null: vehicles without a fleet."
    )
    name = serializers.CharField()
    figures = ChargingFiguresSerializer()
    next_day = NextDayDemandSerializer()
    vehicles = VehicleInsightSerializer(many=True)


class FleetInsightsSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    next_day = serializers.DateField()
    peak_start_hour = serializers.IntegerField()
    peak_end_hour = serializers.IntegerField()
    active_sessions_excluded = serializers.IntegerField()
    fleets = FleetInsightSerializer(many=True)


class ModelVersionSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="code", read_only=True)
    label = serializers.CharField(read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "label",
            "task",
            "site",
            "version",
            "status",
            "trained_at",
            "train_start",
            "train_end",
            "holdout_end",
            "features",
            "train_rows",
            "holdout_rows",
            "train_seconds",
            "mae",
            "rmse",
            "smape",
            "wape",
            "interval_coverage",
            "baseline_label",
            "baseline_mae",
            "baseline_rmse",
            "baseline_smape",
            "baseline_wape",
            "artifact_sha256",
            "artifact_bytes",
            "onnx_max_abs_diff",
            "decision",
            "promoted_at",
            "retired_at",
        ]


class ForecastSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Forecast
        fields = [
            "id",
            "site",
            "task",
            "target_hour",
            "origin",
            "value",
            "p10",
            "p90",
            "source",
            "model_version",
            "label",
            "is_backtest",
            "made_at",
            "actual",
            "baseline_value",
        ]


class ForecastRowSerializer(serializers.Serializer):
    hour_start = serializers.DateTimeField()
    energy_kwh = serializers.FloatField(allow_null=True)
    p10 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)
    plugged_in = serializers.FloatField(allow_null=True)
    plugged_in_p10 = serializers.FloatField(allow_null=True)
    plugged_in_p90 = serializers.FloatField(allow_null=True)


class TomorrowSerializer(serializers.Serializer):
    day = serializers.DateField(allow_null=True, help_text="Site local day.")
    energy_kwh = serializers.FloatField(
        allow_null=True, help_text="Sum of the day's hourly forecasts."
    )
    hours = serializers.IntegerField()


class SiteForecastSerializer(serializers.Serializer):
    site = serializers.CharField(source="site.code")
    origin = serializers.DateTimeField(
        allow_null=True, help_text="End of the data the forecast starts from."
    )
    is_baseline = serializers.BooleanField(
        help_text="True: the seasonal-naive baseline, not a trained model."
    )
    label = serializers.CharField()
    model_version = serializers.IntegerField(source="model_version.pk", allow_null=True)
    plugged_in_label = serializers.CharField(allow_blank=True)
    tomorrow = TomorrowSerializer()
    rows = ForecastRowSerializer(many=True)
