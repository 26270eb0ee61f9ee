"""Training on real ACN data: registry rows, ONNX artifacts, promotion rules."""

import numpy as np
import pytest

from forecasting.ml.onnx_export import onnx_predict_raw, onnx_session, sha256_hex
from forecasting.models import ForecastTask, ModelStatus, ModelVersion
from forecasting.services import model_promote, model_rollback, model_train
from forecasting.services.training import dataset_build
from forecasting.serving import model_predict


def test_training_registers_a_version_whose_onnx_matches_xgboost(caltech):
    version = model_train(site=caltech, task=ForecastTask.SITE_ENERGY)

    version.refresh_from_db()
    assert version.status == ModelStatus.CANDIDATE
    assert version.version == 1
    assert version.train_rows > 24 * 28 and version.holdout_rows >= 24 * 7
    assert version.train_start < version.train_end < version.holdout_end
    # Weekly lags at the same local hour, and a model of the correction to the
    # site's usual value of the hour, with its band calibrated before the holdout.
    assert {"lag_7d", "day_profile"} <= set(version.features)
    assert version.params["base_feature"] == "day_profile"
    widening = version.params["interval_widening"]
    assert widening["calibration_rows"] >= 24 * 21
    assert widening["coverage_after"] >= 80 > widening["coverage_before"]
    blob = bytes(version.artifact)
    assert version.artifact_sha256 == sha256_hex(blob)
    assert version.artifact_bytes == len(blob)
    for metric in (version.mae, version.rmse, version.wape, version.baseline_mae):
        assert metric is not None and metric > 0
    assert 0 <= version.interval_coverage <= 100
    assert version.onnx_max_abs_diff < 1e-3

    # Serving the stored bytes gives the ONNX outputs, clipped at zero and in
    # quantile order.
    dataset = dataset_build(site=caltech, task=ForecastTask.SITE_ENERGY)
    X = dataset.X_holdout[version.features].to_numpy(dtype=np.float32)
    raw = onnx_predict_raw(onnx_session(blob), X)
    served = model_predict(model_version=version, X=X)
    assert raw.shape == (len(X), 3)
    assert np.allclose(np.sort(np.clip(raw, 0, None), axis=1), served, atol=1e-6)
    # The model learned something: its holdout MAE is below the seasonal naive.
    assert version.mae < version.baseline_mae


def test_onnx_export_matches_xgboost_predictions_on_real_rows(caltech):
    from forecasting.ml.onnx_export import onnx_max_abs_diff, quantile_model_to_onnx
    from forecasting.ml.training import HOURLY_PARAMS, quantile_model_fit

    dataset = dataset_build(site=caltech, task=ForecastTask.SITE_ENERGY)
    model = quantile_model_fit(
        dataset.X_train,
        dataset.y_train,
        features=dataset.features,
        params={**HOURLY_PARAMS, "n_estimators": 60},
    )
    blob = quantile_model_to_onnx(model)
    # The first training weeks (lags reaching before the data: NaN) and the holdout.
    X = np.vstack(
        [
            dataset.X_train[dataset.features].to_numpy(dtype=np.float32)[:400],
            dataset.X_holdout[dataset.features].to_numpy(dtype=np.float32),
        ]
    )
    got = onnx_predict_raw(onnx_session(blob), X)
    expected = model.predict_raw(X)

    assert np.isnan(X).any(), "rows with missing lags exercise NaN handling"
    assert np.max(np.abs(got - expected)) < 1e-3
    assert onnx_max_abs_diff(model, blob, X) == pytest.approx(
        float(np.max(np.abs(got - expected))), abs=1e-9
    )


def test_a_worse_candidate_is_not_promoted(caltech, monkeypatch):
    first = model_train(site=caltech, task=ForecastTask.SITE_ENERGY)
    promoted, _ = model_promote(model_version=first)
    assert promoted

    # Two stumps on their own, without the day profile to correct: a real
    # but much weaker model.
    from forecasting.services import training

    monkeypatch.setattr(training, "HOURLY_BASE_FEATURE", None)
    monkeypatch.setattr(
        training,
        "HOURLY_PARAMS",
        {**training.HOURLY_PARAMS, "n_estimators": 2, "max_depth": 1},
    )
    worse = model_train(site=caltech, task=ForecastTask.SITE_ENERGY)
    promoted, reason = model_promote(model_version=worse)

    worse.refresh_from_db()
    first.refresh_from_db()
    assert not promoted
    assert worse.status == ModelStatus.CANDIDATE
    assert "not below" in worse.decision
    assert first.status == ModelStatus.ACTIVE
    assert worse.metrics["active_mae_on_holdout"] == pytest.approx(first.mae, rel=1e-4)


def test_a_better_model_replaces_the_active_one_and_roll_back_restores_it(
    caltech, monkeypatch
):
    from forecasting.services import training

    normal = training.HOURLY_PARAMS
    # Twenty small trees learning the whole value, not a correction to the day
    # profile: better than the seasonal naive, worse than the real model.
    monkeypatch.setattr(training, "HOURLY_BASE_FEATURE", None)
    monkeypatch.setattr(
        training, "HOURLY_PARAMS", {**normal, "n_estimators": 20, "max_depth": 2}
    )
    first = model_train(site=caltech, task=ForecastTask.SITE_ENERGY)
    assert model_promote(model_version=first)[0]
    monkeypatch.undo()
    second = model_train(site=caltech, task=ForecastTask.SITE_ENERGY)
    promoted, reason = model_promote(model_version=second)

    assert promoted, reason
    assert second.metrics["active_mae_on_holdout"] > second.mae
    statuses = dict(ModelVersion.objects.values_list("version", "status"))
    assert statuses == {1: ModelStatus.RETIRED, 2: ModelStatus.ACTIVE}

    restored = model_rollback(site_id=caltech.pk, task=ForecastTask.SITE_ENERGY)

    assert restored.pk == first.pk
    statuses = dict(ModelVersion.objects.values_list("version", "status"))
    assert statuses == {1: ModelStatus.ACTIVE, 2: ModelStatus.RETIRED}
    # Nothing older than v1 to roll back to.
    assert model_rollback(site_id=caltech.pk, task=ForecastTask.SITE_ENERGY) is None
