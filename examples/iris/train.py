"""Trains the iris sample model and exports it to ONNX.

Uses the iris data that ships with scikit-learn (no download):

    python train.py [--out model/iris.onnx]
"""

import argparse
import os

from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "model", "iris.onnx"))
    args = parser.parse_args()

    iris = load_iris()
    features = iris.data.astype("float32")
    train_x, test_x, train_y, test_y = train_test_split(
        features, iris.target, test_size=0.2, random_state=42, stratify=iris.target)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train_x, train_y)
    print(f"test accuracy: {model.score(test_x, test_y):.3f}")

    onnx_model = to_onnx(model, train_x[:1], options={id(model.steps[-1][1]): {"zipmap": False}},
                         target_opset=17)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "wb") as file:
        file.write(onnx_model.SerializeToString())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
