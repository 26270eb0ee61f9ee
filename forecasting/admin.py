"""Admin of the model registry and stored forecasts: retrain, promote, roll back."""

from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html

from forecasting import tasks
from forecasting.models import Forecast, ForecastScore, ModelStatus, ModelVersion
from forecasting.services.registry import model_promote, model_rollback


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "site",
        "task",
        "version",
        "status_badge",
        "trained_at",
        "mae_column",
        "baseline_mae_column",
        "rmse_column",
        "smape_column",
        "wape_column",
        "coverage_column",
        "onnx_diff_column",
        "train_rows",
        "holdout_rows",
    ]
    list_filter = ["status", "task", "site"]
    ordering = ["site", "task", "-version"]
    actions = ["retrain", "promote", "roll_back"]
    readonly_fields = [
        f.name for f in ModelVersion._meta.fields if f.name not in {"artifact"}
    ]
    exclude = ["artifact"]

    def has_add_permission(self, request) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("site").defer("artifact")

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return (
            format_html("<strong>{}</strong>", obj.status)
            if (obj.status == ModelStatus.ACTIVE)
            else obj.status
        )

    @admin.display(description="MAE", ordering="mae")
    def mae_column(self, obj):
        return _fmt(obj.mae)

    @admin.display(description="baseline MAE", ordering="baseline_mae")
    def baseline_mae_column(self, obj):
        return _fmt(obj.baseline_mae)

    @admin.display(description="RMSE", ordering="rmse")
    def rmse_column(self, obj):
        return _fmt(obj.rmse)

    @admin.display(description="SMAPE %", ordering="smape")
    def smape_column(self, obj):
        return _fmt(obj.smape, 1)

    @admin.display(description="WAPE %", ordering="wape")
    def wape_column(self, obj):
        return _fmt(obj.wape, 1)

    @admin.display(description="p10-p90 cover %", ordering="interval_coverage")
    def coverage_column(self, obj):
        return _fmt(obj.interval_coverage, 1)

    @admin.display(description="ONNX max diff", ordering="onnx_max_abs_diff")
    def onnx_diff_column(self, obj):
        return "–" if obj.onnx_max_abs_diff is None else f"{obj.onnx_max_abs_diff:.1e}"

    @admin.action(description="Retrain these sites and tasks now")
    def retrain(self, request, queryset):
        pairs = sorted({(v.site_id, v.task) for v in queryset})
        for site_id, task in pairs:
            transaction.on_commit(
                lambda s=site_id, t=task: tasks.retrain.delay(site_ids=[s], tasks=[t])
            )
        self.message_user(
            request, f"Retraining queued for {len(pairs)} site/task pair(s)."
        )

    @admin.action(description="Promote (if it beats the active model and baseline)")
    def promote(self, request, queryset):
        for version in queryset:
            promoted, reason = model_promote(model_version=version)
            level = messages.SUCCESS if promoted else messages.WARNING
            verb = "promoted" if promoted else "not promoted"
            self.message_user(request, f"{version}: {verb}: {reason}", level)

    @admin.action(description="Roll back to the previously active version")
    def roll_back(self, request, queryset):
        pairs = sorted({(v.site_id, v.task) for v in queryset})
        for site_id, task in pairs:
            previous = model_rollback(site_id=site_id, task=task)
            if previous is None:
                self.message_user(
                    request,
                    f"{task} at site {site_id}: nothing to roll back to.",
                    messages.WARNING,
                )
            else:
                self.message_user(request, f"Re-activated {previous}.")


@admin.register(Forecast)
class ForecastAdmin(admin.ModelAdmin):
    list_display = [
        "site",
        "task",
        "target_hour",
        "value",
        "p10",
        "p90",
        "actual",
        "label",
        "is_backtest",
        "made_at",
    ]
    list_filter = ["site", "task", "source", "is_backtest"]
    date_hierarchy = "target_hour"
    list_select_related = ["site"]
    readonly_fields = [f.name for f in Forecast._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ForecastScore)
class ForecastScoreAdmin(admin.ModelAdmin):
    list_display = ["site", "task", "day", "source", "model_version", "hours", "mae"]
    list_filter = ["site", "task", "source"]
    list_select_related = ["site", "model_version"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("model_version__artifact")

    readonly_fields = [f.name for f in ForecastScore._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
