"""Model registry, stored forecasts and their daily scores."""

from django.db import models

from stations.models import Site


class ForecastTask(models.TextChoices):
    SITE_ENERGY = "site_energy", "Site energy per hour (kWh)"
    SITE_PLUGGED_IN = "site_plugged_in", "Vehicles plugged in per hour"
    SESSION_ENERGY = "session_energy", "Session energy at plug-in (kWh)"
    SESSION_DURATION = "session_duration", "Session duration at plug-in (h)"


SITE_TASKS = (ForecastTask.SITE_ENERGY, ForecastTask.SITE_PLUGGED_IN)
SESSION_TASKS = (ForecastTask.SESSION_ENERGY, ForecastTask.SESSION_DURATION)


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"


class ModelVersion(models.Model):
    """One trained model: its window, features, holdout scores and ONNX artifact.

    The artifact is stored in the database (a few hundred kB) so every worker
    and web process reads the same bytes; ``artifact_sha256`` is checked on load.
    Metrics are on the holdout (the most recent part of the window, not trained
    on); ``baseline_*`` are the baseline's on the same rows.
    """

    task = models.CharField(max_length=32, choices=ForecastTask.choices)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE
    )
    trained_at = models.DateTimeField()
    train_start = models.DateTimeField()
    train_end = models.DateTimeField(help_text="Holdout starts here.")
    holdout_end = models.DateTimeField()
    features = models.JSONField(default=list)
    target_transform = models.CharField(max_length=16, default="none")
    params = models.JSONField(default=dict, blank=True)
    train_rows = models.PositiveIntegerField()
    holdout_rows = models.PositiveIntegerField()
    train_seconds = models.FloatField(default=0)
    mae = models.FloatField(null=True)
    rmse = models.FloatField(null=True)
    smape = models.FloatField(null=True, help_text="Percent.")
    wape = models.FloatField(null=True, help_text="Percent.")
    interval_coverage = models.FloatField(
        null=True, help_text="Percent of holdout values inside p10-p90 (aim: 80)."
    )
    baseline_label = models.CharField(max_length=64, blank=True)
    baseline_mae = models.FloatField(null=True)
    baseline_rmse = models.FloatField(null=True)
    baseline_smape = models.FloatField(null=True)
    baseline_wape = models.FloatField(null=True)
    metrics = models.JSONField(default=dict, blank=True)
    artifact = models.BinaryField(editable=False)
    artifact_sha256 = models.CharField(max_length=64)
    artifact_bytes = models.PositiveIntegerField(default=0)
    onnx_max_abs_diff = models.FloatField(
        null=True, help_text="Largest |ONNX - XGBoost| on the holdout."
    )
    decision = models.TextField(blank=True, help_text="Why it was or was not promoted.")
    promoted_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["site", "task", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "site", "version"], name="model_version_unique"
            ),
            models.UniqueConstraint(
                fields=["task", "site"],
                condition=models.Q(status="active"),
                name="model_version_one_active",
            ),
        ]
        indexes = [models.Index(fields=["task", "site", "status"])]

    def __str__(self) -> str:
        return f"{self.task} {self.site_id} v{self.version} ({self.status})"

    @property
    def label(self) -> str:
        return f"{self.get_task_display()} v{self.version}"


class ForecastSource(models.TextChoices):
    MODEL = "model"
    BASELINE = "baseline"


BASELINE_LABEL = "seasonal naive (same hour last week)"


class Forecast(models.Model):
    """One forecast of one hour at one site, made from data up to ``origin``.

    ``is_backtest`` rows were made after the fact for past hours, each from data
    at least 48 hours older than its target (what a live forecast would have
    known); they show how good the model was on imported history.
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    task = models.CharField(max_length=32, choices=ForecastTask.choices)
    target_hour = models.DateTimeField(help_text="UTC start of the hour forecast.")
    origin = models.DateTimeField(help_text="End of the data the forecast used.")
    value = models.FloatField()
    p10 = models.FloatField(null=True)
    p90 = models.FloatField(null=True)
    source = models.CharField(max_length=16, choices=ForecastSource.choices)
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="forecasts",
    )
    label = models.CharField(max_length=100)
    is_backtest = models.BooleanField(default=False)
    made_at = models.DateTimeField()
    actual = models.FloatField(null=True, blank=True)
    baseline_value = models.FloatField(
        null=True, blank=True, help_text="Seasonal naive for the same hour."
    )
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["site", "task", "target_hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "task", "origin", "target_hour", "source"],
                name="forecast_unique_per_origin",
            )
        ]
        indexes = [
            models.Index(fields=["site", "task", "-origin"]),
            models.Index(fields=["site", "task", "target_hour"]),
            models.Index(
                fields=["evaluated_at"],
                condition=models.Q(evaluated_at__isnull=True),
                name="forecast_unevaluated_idx",
            ),
        ]

    def __str__(self) -> str:
        hour = f"{self.target_hour:%Y-%m-%d %H:00}"
        return f"{self.task} {self.site_id} {hour} {self.value:.2f}"


class ForecastScore(models.Model):
    """Error of one model version (or the baseline) on one day of one site."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    task = models.CharField(max_length=32, choices=ForecastTask.choices)
    day = models.DateField(help_text="UTC day of the target hours.")
    source = models.CharField(max_length=16, choices=ForecastSource.choices)
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="scores",
    )
    hours = models.PositiveIntegerField()
    mae = models.FloatField()
    rmse = models.FloatField()
    baseline_mae = models.FloatField(
        null=True, help_text="Seasonal naive on the same hours."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["site", "task", "-day"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "task", "day", "model_version"],
                condition=models.Q(model_version__isnull=False),
                name="forecast_score_unique_model",
            ),
            models.UniqueConstraint(
                fields=["site", "task", "day", "source"],
                condition=models.Q(model_version__isnull=True),
                name="forecast_score_unique_no_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.site_id} {self.day} MAE {self.mae:.2f}"
