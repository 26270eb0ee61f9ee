"""Checks across apps, scheduled in settings.CELERY_BEAT_SCHEDULE."""

from celery import shared_task

from forecasting.selectors import seconds_since_last_retrain
from stations.alerts import retrain_overdue_alert


@shared_task(ignore_result=True)
def retrain_overdue_check() -> bool:
    """Open (or resolve) the retrain-overdue alert. True while it is open."""
    alert = retrain_overdue_alert(seconds_since_retrain=seconds_since_last_retrain())
    return alert is not None
