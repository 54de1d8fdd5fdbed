"""A small Azure-ML-style scoring script for the canary demo (scripts/canary).

The "model" is a JSON file of per-feature thresholds; a row is labelled "high" when
its weighted sum passes the model's cut-off. It needs nothing but the standard
library, so each device's environment is made in a second.
"""
import json
import os

model = None


def init():
    global model
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")
    with open(path) as f:
        model = json.load(f)
    if set(model) != {"weights", "cutoff"}:
        raise ValueError(f"{path} is not a threshold model: it has {sorted(model)}, expected cutoff and weights")


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    scores = [sum(w * x for w, x in zip(model["weights"], row)) for row in rows]
    return {"labels": ["high" if s >= model["cutoff"] else "low" for s in scores], "scores": scores}
