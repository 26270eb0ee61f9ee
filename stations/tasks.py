"""Periodic checks that feed alerts (scheduled in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from stations import alerts


@shared_task(ignore_result=True)
def site_silence_check() -> dict[str, int]:
    return alerts.site_silence_check()
