from django.apps import AppConfig


class GiuEvConfig(AppConfig):
    """Project-wide wiring: the Celery signal handlers that count task runs,
    and scrape-time gauges kept out of the default registry (/metrics adds them
    per scrape where they belong: giu_ev/exposition.py)."""

    name = "giu_ev"
    verbose_name = "GIU EV"

    def ready(self) -> None:
        from giu_ev import celery_metrics  # noqa: F401  (connects the signals)
        from giu_ev.exposition import default_registry_prepare

        default_registry_prepare()
