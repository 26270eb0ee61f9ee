"""Promotion and roll-back of model versions."""

import logging

from django.db import transaction
from django.utils import timezone

from forecasting.models import ModelStatus, ModelVersion
from forecasting.serving import serving_cache_clear

logger = logging.getLogger(__name__)


def model_promotion_check(*, model_version: ModelVersion) -> tuple[bool, str]:
    """Whether the candidate beats the baseline and the active version (holdout MAE).

    The active version is compared on the candidate's own holdout where its
    features allow (``metrics['active_mae_on_holdout']``), else on its own
    stored holdout MAE.
    """
    candidate = model_version
    if candidate.status == ModelStatus.ACTIVE:
        return False, "already active"
    if candidate.mae is None or candidate.baseline_mae is None:
        return False, "no holdout scores"
    if candidate.mae >= candidate.baseline_mae:
        return False, (
            f"holdout MAE {candidate.mae:.3f} not below the baseline's "
            f"{candidate.baseline_mae:.3f}"
        )
    active = ModelVersion.objects.filter(
        site_id=candidate.site_id, task=candidate.task, status=ModelStatus.ACTIVE
    ).first()
    if active is not None:
        active_mae = (candidate.metrics or {}).get("active_mae_on_holdout")
        if active_mae is None:
            active_mae = active.mae
        if active_mae is not None and candidate.mae >= active_mae:
            return False, (
                f"holdout MAE {candidate.mae:.3f} not below active "
                f"v{active.version}'s {active_mae:.3f}"
            )
    return True, (
        f"holdout MAE {candidate.mae:.3f} beats baseline {candidate.baseline_mae:.3f}"
        + (f" and active v{active.version}" if active is not None else "")
    )


def _activate(model_version: ModelVersion, *, reason: str) -> None:
    now = timezone.now()
    ModelVersion.objects.filter(
        site_id=model_version.site_id,
        task=model_version.task,
        status=ModelStatus.ACTIVE,
    ).exclude(pk=model_version.pk).update(status=ModelStatus.RETIRED, retired_at=now)
    model_version.status = ModelStatus.ACTIVE
    model_version.promoted_at = now
    model_version.retired_at = None
    model_version.decision = reason
    model_version.save(
        update_fields=["status", "promoted_at", "retired_at", "decision"]
    )
    transaction.on_commit(serving_cache_clear)


def model_promote(*, model_version: ModelVersion) -> tuple[bool, str]:
    """Make the candidate active if it passes ``model_promotion_check``."""
    with transaction.atomic():
        model_version = ModelVersion.objects.select_for_update().get(
            pk=model_version.pk
        )
        ok, reason = model_promotion_check(model_version=model_version)
        if not ok:
            if model_version.status == ModelStatus.CANDIDATE:
                model_version.decision = f"not promoted: {reason}"
                model_version.save(update_fields=["decision"])
            return False, reason
        _activate(model_version, reason=f"promoted: {reason}")
    logger.info(
        "Promoted %s: %s",
        model_version,
        reason,
        extra={"model_version": model_version.pk},
    )
    return True, reason


def model_rollback(*, site_id: int, task: str) -> ModelVersion | None:
    """Retire the active version and re-activate the one active before it."""
    with transaction.atomic():
        active = (
            ModelVersion.objects.select_for_update()
            .filter(site_id=site_id, task=task, status=ModelStatus.ACTIVE)
            .first()
        )
        previous = (
            ModelVersion.objects.filter(
                site_id=site_id,
                task=task,
                status=ModelStatus.RETIRED,
                promoted_at__isnull=False,
                version__lt=getattr(active, "version", 0),
            )
            .order_by("-promoted_at")
            .first()
        )
        if active is None or previous is None:
            return None
        active.status = ModelStatus.RETIRED
        active.retired_at = timezone.now()
        active.decision = f"rolled back to v{previous.version}"
        active.save(update_fields=["status", "retired_at", "decision"])
        _activate(previous, reason=f"re-activated by roll-back of v{active.version}")
    logger.info(
        "Rolled back %s to v%s",
        active,
        previous.version,
        extra={"model_version": previous.pk},
    )
    return previous
