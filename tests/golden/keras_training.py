"""Golden values for `tests/golden_training.rs`: one epoch of `fit` in Keras.

Run from the repository root (Keras 3 with the JAX CPU backend):

    KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_training.py

Each case builds a small MLP, sets fixed initial weights, trains one epoch
with `shuffle=False`, and records the initial and final weights, the history
and `evaluate` on the training data. strata replays the same epoch from the
same weights and batches and must land on the same weights within 1e-4.
"""

import json
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

rng = np.random.default_rng(20261121)


def weights_of(model):
    out = {}
    for layer in model.layers:
        for w in layer.weights:
            out[f"{layer.name}.{w.name}"] = {"shape": list(w.shape), "data": np.asarray(w).ravel().tolist()}
    return out


def case(name, layers, optimizer, loss, metrics, x, y, fit_kwargs, sample_weight=None, loss_name=None):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],))] + layers)
    # Fixed, non-trivial initial weights from our own generator.
    for layer in model.layers:
        for w in layer.weights:
            w.assign(rng.normal(0.0, 0.5, size=w.shape).astype("float32"))
    initial = weights_of(model)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    history = model.fit(x, y, epochs=1, shuffle=False, verbose=0, sample_weight=sample_weight, **fit_kwargs)
    evaluation = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    return {
        "name": name,
        "layers": [l.get_config() | {"class_name": l.__class__.__name__} for l in model.layers],
        "optimizer": optimizer.get_config() | {"class_name": optimizer.__class__.__name__},
        "loss": loss_name or loss,
        "metrics": metrics,
        "fit": fit_kwargs,
        "x": {"shape": list(x.shape), "data": x.ravel().tolist()},
        "y": {"shape": list(y.shape), "dtype": str(y.dtype), "data": y.ravel().tolist()},
        "sample_weight": None if sample_weight is None else sample_weight.tolist(),
        "initial": initial,
        "final": weights_of(model),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "evaluate": {k: float(v) for k, v in evaluation.items()},
    }


x = rng.normal(size=(72, 4)).astype("float32")
labels = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64") + (x[:, 2] > 0.8).astype("int64")
binary = (x[:, 0] * x[:, 3] > 0).astype("float32").reshape(-1, 1)
weights = rng.uniform(0.2, 2.0, size=72).astype("float32")

cases = [
    case(
        "sgd_momentum",
        [keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, activation="softmax")],
        keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        "sparse_categorical_crossentropy",
        ["accuracy"],
        x,
        labels,
        {"batch_size": 16},
    ),
    case(
        "adam_l2_sample_weight",
        [
            keras.layers.Dense(8, activation="tanh", kernel_regularizer=keras.regularizers.l2(0.01)),
            keras.layers.Dense(3, activation="softmax"),
        ],
        keras.optimizers.Adam(learning_rate=0.01),
        "sparse_categorical_crossentropy",
        ["accuracy"],
        x,
        labels,
        {"batch_size": 16},
        sample_weight=weights,
    ),
    case(
        "adam_binary_logits_validation",
        [keras.layers.Dense(6, activation="relu"), keras.layers.Dense(1)],
        keras.optimizers.Adam(learning_rate=0.02),
        keras.losses.BinaryCrossentropy(from_logits=True),
        ["mae"],
        x,
        binary,
        {"batch_size": 8, "validation_split": 0.25},
        loss_name="binary_crossentropy_from_logits",
    ),
]

out = os.path.join(os.path.dirname(__file__), "keras_training.json")
with open(out, "w") as f:
    json.dump({"keras": keras.__version__, "backend": keras.backend.backend(), "cases": cases}, f)
print("wrote", out)
