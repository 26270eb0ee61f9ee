"""onnxruntime inference sessions for active model versions, cached per process.

The cache is keyed by model version id and artifact hash. Callers look up the
active version in the database first, so a promotion anywhere (another worker,
the admin) is seen at the next request; ``serving_cache_clear`` also drops the
sessions of this process at once when it did the promotion.
"""

import logging
import threading

import numpy as np
import onnxruntime as ort

from forecasting.ml.onnx_export import onnx_predict_raw, onnx_session, sha256_hex
from forecasting.ml.training import quantiles_finish
from forecasting.models import ModelVersion

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_sessions: dict[int, tuple[str, ort.InferenceSession]] = {}


class ArtifactCorrupt(RuntimeError):
    """The stored ONNX bytes do not match the recorded sha256."""


def _session_for(model_version: ModelVersion) -> ort.InferenceSession:
    with _lock:
        cached = _sessions.get(model_version.pk)
        if cached is not None and cached[0] == model_version.artifact_sha256:
            return cached[1]

    blob = bytes(model_version.artifact)
    if sha256_hex(blob) != model_version.artifact_sha256:
        raise ArtifactCorrupt(f"artifact of model version {model_version.pk} corrupt")
    session = onnx_session(blob)
    with _lock:
        _sessions[model_version.pk] = (model_version.artifact_sha256, session)
    logger.info(
        "Loaded ONNX model %s",
        model_version,
        extra={"model_version": model_version.pk},
    )
    return session


def model_predict(*, model_version: ModelVersion, X: np.ndarray) -> np.ndarray:
    """Quantile predictions (columns p10, p50, p90) of a stored model."""
    if len(X) == 0:
        return np.zeros((0, 3))
    raw = onnx_predict_raw(_session_for(model_version), X)
    return quantiles_finish(raw, model_version.target_transform)


def serving_cache_clear(*, keep_ids: set[int] | None = None) -> None:
    """Drop cached sessions (all, or all but ``keep_ids``)."""
    with _lock:
        for pk in list(_sessions):
            if keep_ids is None or pk not in keep_ids:
                del _sessions[pk]


def serving_cached_ids() -> set[int]:
    with _lock:
        return set(_sessions)
