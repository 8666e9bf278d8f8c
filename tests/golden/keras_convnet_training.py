"""Golden values for convnet training: one epoch of `fit` in Keras.

Run from the repository root (Keras 3 with the JAX CPU backend):

    KERAS_BACKEND=jax /work/keras-venv/bin/python tests/golden/keras_convnet_training.py

Writes ``tests/golden/keras_convnet_training.json`` in the same format as
``keras_training.json`` (see keras_training.py): {"keras", "backend",
"cases"}, each case with name, layers (get_config() + class_name), optimizer,
loss, metrics, fit, x, y, sample_weight, initial, final, history, evaluate,
plus one extra field "trainable": {"<layer>.<weight>": bool}.

Each case builds a small convnet on 8x8x1 images (channels_last), sets fixed
initial weights, trains one epoch with ``shuffle=False`` (48 samples, batch
16 -> 3 steps), and records the initial and final weights (keyed
"<layer name>.<weight name>", in model.layers / layer.weights order), the
history and ``evaluate`` on the training data (batch_size 16).

  * convnet_adam: Conv2D(4, 3, relu) -> MaxPooling2D(2) ->
    Conv2D(6, 3, padding same, relu) -> Flatten -> Dense(3, softmax),
    Adam(1e-3), sparse_categorical_crossentropy, accuracy.
  * convnet_bn_sgd_momentum: the same with BatchNormalization() after the
    first Conv2D, SGD(0.05, momentum 0.9).  BN keeps its default initial
    state gamma=1, beta=0, moving_mean=0, moving_variance=1 (only kernels and
    biases are drawn); BN uses batch statistics during fit (biased variance,
    epsilon 1e-3) and updates moving_mean / moving_variance with momentum
    0.99 after every step; "final" holds the moving statistics after the
    epoch and ``evaluate`` uses them (inference mode).  gamma/beta are
    trainable, moving_mean/moving_variance are not ("trainable" field).

Determinism: ``np.random.default_rng(16)``; x ~ normal(0, 1), kernels and
biases ~ normal(0, 0.3), all rounded to 4 decimals and cast to float32, so
the JSON holds their exact float32 values.  ``keras.backend.clear_session()``
before each case makes the layer names per case start at conv2d / dense.
"""

import json
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

rng = np.random.default_rng(16)


def r4(a):
    return np.round(a, 4).astype("float32")


def weights_of(model):
    out = {}
    for layer in model.layers:
        for w in layer.weights:
            out[f"{layer.name}.{w.name}"] = {"shape": list(w.shape), "data": np.asarray(w).ravel().tolist()}
    return out


def trainable_of(model):
    return {f"{l.name}.{w.name}": bool(w.trainable) for l in model.layers for w in l.weights}


def case(name, make_layers, optimizer, loss, metrics, x, y, fit_kwargs):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(x.shape[1:])] + make_layers())
    # Fixed, non-trivial initial weights from our own generator for kernels
    # and biases; BatchNormalization keeps gamma=1, beta=0, mean=0, var=1.
    for layer in model.layers:
        for w in layer.weights:
            if w.name in ("kernel", "bias"):
                w.assign(r4(rng.normal(0.0, 0.3, size=w.shape)))
            else:
                assert isinstance(layer, keras.layers.BatchNormalization), w.name
    initial = weights_of(model)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    history = model.fit(x, y, epochs=1, shuffle=False, verbose=0, **fit_kwargs)
    evaluation = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    final = weights_of(model)
    for v in final.values():
        assert np.all(np.isfinite(v["data"])), name
    return {
        "name": name,
        "layers": [l.get_config() | {"class_name": l.__class__.__name__} for l in model.layers],
        "optimizer": optimizer.get_config() | {"class_name": optimizer.__class__.__name__},
        "loss": loss,
        "metrics": metrics,
        "fit": fit_kwargs,
        "x": {"shape": list(x.shape), "data": x.ravel().tolist()},
        "y": {"shape": list(y.shape), "dtype": str(y.dtype), "data": y.ravel().tolist()},
        "sample_weight": None,
        "initial": initial,
        "final": final,
        "trainable": trainable_of(model),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "evaluate": {k: float(v) for k, v in evaluation.items()},
    }


x = r4(rng.normal(size=(48, 8, 8, 1)))
# Learnable labels: brighter left half -> 0, brighter right half -> 1,
# both halves dim (mean below -0.1) -> 2.
left = x[:, :, :4, 0].mean(axis=(1, 2))
right = x[:, :, 4:, 0].mean(axis=(1, 2))
labels = np.argmax(np.stack([left, right, np.full_like(left, -0.1)], axis=1), axis=1).astype("int64")


def convnet():
    return [
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ]


def convnet_bn():
    layers = convnet()
    return layers[:1] + [keras.layers.BatchNormalization()] + layers[1:]


cases = [
    case(
        "convnet_adam",
        convnet,
        keras.optimizers.Adam(learning_rate=1e-3),
        "sparse_categorical_crossentropy",
        ["accuracy"],
        x,
        labels,
        {"batch_size": 16},
    ),
    case(
        "convnet_bn_sgd_momentum",
        convnet_bn,
        keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        "sparse_categorical_crossentropy",
        ["accuracy"],
        x,
        labels,
        {"batch_size": 16},
    ),
]

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_convnet_training.json")
with open(out, "w") as f:
    json.dump({"keras": keras.__version__, "backend": keras.backend.backend(), "cases": cases}, f)
print("wrote", out, os.path.getsize(out), "bytes; labels per class", np.bincount(labels).tolist())
