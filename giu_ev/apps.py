from django.apps import AppConfig


class GiuEvConfig(AppConfig):
    """Project-wide wiring: the scrape-time collector and Celery signal handlers."""

    name = "giu_ev"
    verbose_name = "GIU EV"

    def ready(self) -> None:
        from giu_ev import celery_metrics  # noqa: F401  (connects the signals)
        from giu_ev.collectors import domain_collector_register

        domain_collector_register()
