"""Celery tasks in the embedded default (eager), commands, and the pages."""

from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from forecasting.models import Forecast, ForecastTask, ModelStatus, ModelVersion
from forecasting.tasks import evaluate, predict, retrain


def test_tasks_run_in_process_in_the_embedded_default(caltech, settings):
    assert settings.CELERY_TASK_ALWAYS_EAGER

    trained = retrain.delay(
        site_ids=[caltech.pk], tasks=[ForecastTask.SITE_ENERGY]
    ).get()
    written = predict.delay(site_ids=[caltech.pk]).get()
    evaluated = evaluate.delay(site_ids=[caltech.pk]).get()

    version = ModelVersion.objects.get(pk=trained["trained"][0])
    assert trained["promoted"] == [version.pk]
    assert version.status == ModelStatus.ACTIVE
    assert written["caltech"] > 96
    live = Forecast.objects.filter(
        site=caltech, task=ForecastTask.SITE_ENERGY, is_backtest=False
    )
    assert live.count() == 48 and {f.model_version_id for f in live} == {version.pk}
    # The backtest hours are in the past of the data: all of them get scored.
    assert evaluated["caltech"]["evaluated"] > 13 * 24
    assert not Forecast.objects.filter(
        site=caltech, is_backtest=True, actual__isnull=True
    ).exists()


def test_commands_print_a_summary(caltech, capsys):
    call_command("train_forecasts", "--task", "site_energy", "--site", "caltech")
    call_command("predict_forecasts", "--backtest-days", "3")
    call_command("evaluate_forecasts")

    out = capsys.readouterr().out
    assert "Trained 1 model(s), promoted 1" in out
    assert "caltech" in out and "96 forecast rows" in out
    # predict_forecasts scored the finished backtest hours (2 tasks x ~3 days).
    scored = int(out.split("backtest rows,")[1].split("hours scored")[0])
    assert 2 * 2 * 24 < scored <= 2 * 3 * 24
    assert "Evaluated 1 site(s)" in out


def test_the_schedule_is_installed_for_beat(db):
    tasks = dict(PeriodicTask.objects.values_list("task", "crontab__hour"))
    assert tasks["forecasting.retrain"] == "2"
    assert tasks["forecasting.predict"] == "*"
    assert tasks["forecasting.evaluate"] == "*"


def test_forecast_pages_show_the_baseline_and_then_the_model(caltech, operator_client):
    listing = operator_client.get(reverse("forecast_list"))
    page = operator_client.get(reverse("forecast_site", args=["caltech"]))

    assert listing.status_code == 200
    assert "Caltech ACN" in listing.content.decode()
    assert "no trained model is active" in listing.content.decode()
    body = page.content.decode()
    assert "Baseline forecast" in body
    assert "vendor/chart.js/chart.umd.min.js" in body

    retrain.delay(site_ids=[caltech.pk], tasks=[ForecastTask.SITE_ENERGY]).get()
    predict.delay(site_ids=[caltech.pk]).get()
    evaluate.delay(site_ids=[caltech.pk]).get()
    body = operator_client.get(reverse("forecast_site", args=["caltech"])).content
    body = body.decode()
    version = ModelVersion.objects.get(status=ModelStatus.ACTIVE)
    assert "Baseline forecast" not in body
    assert version.label in body
    assert f"{version.mae:.3f}" in body and f"{version.baseline_mae:.3f}" in body
    assert '"actual": [' in body  # the two-week history has what happened


def test_pages_need_a_login(client, db):
    response = client.get(reverse("forecast_list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_unknown_site_is_404(operator_client):
    assert operator_client.get("/forecasts/nowhere/").status_code == 404
