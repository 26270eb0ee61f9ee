"""Export a QuantileModel to one ONNX graph and check it against XGBoost.

The three boosters become three TreeEnsembleRegressor branches sharing one
float input named ``input`` (columns in ``QuantileModel.features`` order) and
giving outputs ``p10``, ``p50`` and ``p90`` (before the target transform).
"""

import hashlib

import numpy as np
import onnx
import onnxmltools
import onnxruntime as ort
from onnx import compose, helper
from onnxmltools.convert.common.data_types import FloatTensorType

from forecasting.ml.training import QUANTILE_NAMES, QuantileModel

INPUT_NAME = "input"
# The highest opset onnxmltools 1.16 converts XGBoost models to.
TARGET_OPSET = 15


def quantile_model_to_onnx(model: QuantileModel) -> bytes:
    """Serialised ONNX model with one output per quantile."""
    n_features = len(model.features)
    nodes, initializers, outputs, opsets = [], [], [], {}
    for name in QUANTILE_NAMES:
        single = onnxmltools.convert_xgboost(
            model.boosters[name],
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            target_opset=TARGET_OPSET,
        )
        prefixed = compose.add_prefix(single, f"{name}_", rename_inputs=False)
        graph = prefixed.graph
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        # Rename the branch's single output to the quantile's name.
        branch_output = graph.output[0].name
        nodes.append(helper.make_node("Identity", [branch_output], [name]))
        outputs.append(
            helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [None, 1])
        )
        for opset in prefixed.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    opsets.setdefault("", 13)

    graph = helper.make_graph(
        nodes,
        "giu_ev_quantiles",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, onnx.TensorProto.FLOAT, [None, n_features]
            )
        ],
        outputs,
        initializer=initializers,
    )
    combined = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
        producer_name="giu_ev",
    )
    combined.ir_version = min(combined.ir_version, 8)
    onnx.checker.check_model(combined)
    return combined.SerializeToString()


def onnx_session(blob: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # Two threads at most (the size of our workers), and no spin-waiting: on a
    # busy 2-core machine spinning threads made batch prediction 3x slower.
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        blob, sess_options=options, providers=["CPUExecutionProvider"]
    )


def onnx_predict_raw(session: ort.InferenceSession, X: np.ndarray) -> np.ndarray:
    """Raw quantile predictions (columns p10, p50, p90) from an ONNX session."""
    data = np.ascontiguousarray(X, dtype=np.float32)
    results = session.run(list(QUANTILE_NAMES), {INPUT_NAME: data})
    return np.column_stack([r.reshape(-1) for r in results])


def onnx_max_abs_diff(model: QuantileModel, blob: bytes, X: np.ndarray) -> float:
    """Largest |ONNX - XGBoost| over all rows and quantiles (raw outputs)."""
    if len(X) == 0:
        return 0.0
    data = np.asarray(X, dtype=np.float32)
    expected = model.predict_raw(data)
    got = onnx_predict_raw(onnx_session(blob), data)
    return float(np.max(np.abs(expected - got)))


def sha256_hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()
