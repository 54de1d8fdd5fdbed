"""Azure ML style scoring script for the iris sample model (ONNX, onnxruntime).

Request:  {"data": [[5.1, 3.5, 1.4, 0.2], ...]}  (sepal length/width, petal length/width in cm)
Response: {"predictions": ["setosa", ...], "probabilities": [[0.98, 0.02, 0.0], ...]}
"""

import json
import os

import numpy as np
import onnxruntime as ort

CLASSES = ["setosa", "versicolor", "virginica"]
session = None
input_name = None


def init():
    global session, input_name
    model_path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "iris.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name


def run(raw_data):
    rows = np.asarray(json.loads(raw_data)["data"], dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise ValueError(f"expected rows of 4 features, got shape {rows.shape}")
    labels, probabilities = session.run(None, {input_name: rows})
    return {
        "predictions": [CLASSES[int(label)] for label in labels],
        "probabilities": np.round(probabilities, 4).tolist(),
    }
