from django.apps import AppConfig


class ForecastingConfig(AppConfig):
    name = "forecasting"
    verbose_name = "Forecasting"

    def ready(self) -> None:
        # Registers the forecasting gauges with the process's metric registry.
        from forecasting import metrics  # noqa: F401
