"""Celery tasks of forecasting: thin, take ids, safe to run twice."""

import logging

from celery import shared_task

from forecasting import services
from forecasting.models import ModelVersion
from stations.models import Site

logger = logging.getLogger(__name__)


def _sites(site_ids: list[int] | None):
    queryset = Site.objects.order_by("pk")
    return queryset if site_ids is None else queryset.filter(pk__in=site_ids)


@shared_task(name="forecasting.retrain")
def retrain(site_ids: list[int] | None = None, tasks: list[str] | None = None) -> dict:
    """Train new versions (all sites and tasks by default); promote the winners."""
    outcomes = services.models_train(sites=_sites(site_ids), tasks=tasks)
    return {
        "trained": [o.version.pk for o in outcomes if o.version is not None],
        "promoted": [o.version.pk for o in outcomes if o.promoted],
    }


@shared_task(name="forecasting.predict")
def predict(site_ids: list[int] | None = None) -> dict:
    """Write next-48-hour forecasts and the two-week backtest of each site."""
    written = {}
    for site in _sites(site_ids):
        written[site.code] = services.forecasts_predict(
            site=site
        ) + services.forecasts_backtest(site=site)
    return written


@shared_task(name="forecasting.evaluate")
def evaluate(site_ids: list[int] | None = None) -> dict:
    """Score finished forecast hours against what happened; alert if worse."""
    result = {}
    for site in _sites(site_ids):
        summary = services.forecasts_evaluate(site=site)
        result[site.code] = {
            "evaluated": summary.evaluated,
            "alert_open": summary.alert_open,
        }
    return result


@shared_task(name="forecasting.promote")
def promote(model_version_id: int) -> dict:
    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is None:
        return {"promoted": False, "reason": "no such model version"}
    promoted, reason = services.model_promote(model_version=version)
    return {"promoted": promoted, "reason": reason}
