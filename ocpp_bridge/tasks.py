"""Periodic work of the bridge (scheduled in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ocpp_bridge.services import frames_prune as frames_prune_service
from stations.services import charge_points_offline_mark


@shared_task(name="ocpp_bridge.tasks.charge_points_offline_check")
def charge_points_offline_check() -> dict:
    """Mark chargers offline after missed heartbeats; safe to run twice."""
    offline, resolved = charge_points_offline_mark(now=timezone.now())
    return {"marked_offline": offline, "alerts_resolved": resolved}


@shared_task(name="ocpp_bridge.tasks.frames_prune")
def frames_prune() -> int:
    """Delete frame log rows older than OCPP_FRAME_RETENTION_DAYS."""
    return frames_prune_service(older_than_days=settings.OCPP_FRAME_RETENTION_DAYS)
