"""Export a QuantileModel to one ONNX graph and check it against XGBoost.

The three boosters become three TreeEnsembleRegressor branches sharing one
float input named ``input`` (columns in ``QuantileModel.features`` order) and
giving outputs ``p10``, ``p50`` and ``p90`` (before the target transform).
The model's base feature is added to each branch and its interval widening
applied inside the graph, so the outputs equal ``QuantileModel.predict_raw``.
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
    branches = {}
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
        branches[name] = graph.output[0].name
        for opset in prefixed.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    opsets[""] = max(opsets.get("", 0), 13)

    if model.base_feature is not None:
        nodes_b, inits_b, branches = _add_base(model, branches)
        nodes.extend(nodes_b)
        initializers.extend(inits_b)
    if model.widening is not None:
        nodes_w, inits_w, branches = _widen_nodes(model, branches)
        nodes.extend(nodes_w)
        initializers.extend(inits_w)
    for name in QUANTILE_NAMES:
        # The quantile's output carries its name whatever came before it.
        nodes.append(helper.make_node("Identity", [branches[name]], [name]))
        outputs.append(
            helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [None, 1])
        )

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


def _const(name: str, value: float) -> onnx.TensorProto:
    return helper.make_tensor(name, onnx.TensorProto.FLOAT, [], [float(value)])


def _add_base(model: QuantileModel, branches: dict[str, str]):
    """Nodes adding input column ``base_feature`` (NaN as 0) to every branch."""
    column = model.features.index(model.base_feature)
    initializers = [
        helper.make_tensor("base_column", onnx.TensorProto.INT64, [1], [column]),
        _const("base_zero", 0.0),
    ]
    nodes = [
        helper.make_node("Gather", [INPUT_NAME, "base_column"], ["base_raw"], axis=1),
        helper.make_node("IsNaN", ["base_raw"], ["base_missing"]),
        helper.make_node(
            "Where", ["base_missing", "base_zero", "base_raw"], ["base_value"]
        ),
    ]
    added = {}
    for name, branch in branches.items():
        added[name] = f"{name}_with_base"
        nodes.append(helper.make_node("Add", [branch, "base_value"], [added[name]]))
    return nodes, initializers, added


def _widen_nodes(model: QuantileModel, branches: dict[str, str]):
    """Nodes of ``training._widen``: p10 and p90 pushed out by factor x width."""
    w = model.widening
    initializers = [
        _const("widen_zero", 0.0),
        _const("widen_floor", w.floor),
        _const("widen_lower", w.lower),
        _const("widen_upper", w.upper),
    ]
    low, high = branches["p10"], branches["p90"]
    nodes = [
        helper.make_node("Sub", [high, low], ["band_spread"]),
        helper.make_node("Max", ["band_spread", "widen_zero"], ["band_spread_pos"]),
        helper.make_node("Add", ["band_spread_pos", "widen_floor"], ["band_width"]),
        helper.make_node("Mul", ["band_width", "widen_lower"], ["widen_down"]),
        helper.make_node("Mul", ["band_width", "widen_upper"], ["widen_up"]),
        helper.make_node("Sub", [low, "widen_down"], ["p10_widened"]),
        helper.make_node("Add", [high, "widen_up"], ["p90_widened"]),
    ]
    return nodes, initializers, {**branches, "p10": "p10_widened", "p90": "p90_widened"}


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
