"""The machine-learning core of forecasting: plain pandas/numpy/XGBoost/ONNX.

Nothing here touches Django, so the benchmark and the services share one code
path: the services turn database rows into the session frame described in
``frames.py`` and call these functions.
"""
