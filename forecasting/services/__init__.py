"""Writes of the forecasting app: training, registry, prediction, evaluation."""

from forecasting.services.evaluation import forecasts_evaluate
from forecasting.services.predicting import forecasts_backtest, forecasts_predict
from forecasting.services.registry import model_promote, model_rollback
from forecasting.services.training import model_train, models_train

__all__ = [
    "forecasts_backtest",
    "forecasts_evaluate",
    "forecasts_predict",
    "model_promote",
    "model_rollback",
    "model_train",
    "models_train",
]
