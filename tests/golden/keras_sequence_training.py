"""Golden values for sequence-model training: one epoch of `fit` in Keras.

Run from the repository root (Keras 3 with the JAX CPU backend):

    KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_sequence_training.py

Writes ``tests/golden/keras_sequence_training.json``: {"keras", "backend",
"cases"}, each case with name, x, y, initial, final, history, evaluate.
Weights are keyed "<layer name>.<weight>" with strata's names for the
weights of wrapped and attention layers (Keras' variable path without the
RNN cell: "bidirectional.forward_gru.kernel", "multi_head_attention.query.kernel").

Each case builds a small model, sets fixed initial weights (normal(0, 0.3),
rounded to 4 decimals; the LSTM's forget bias is whatever is drawn), trains
one epoch with ``shuffle=False`` (48 samples, batch 16 -> 3 steps) and
records the final weights, the history and ``evaluate`` (batch 16):

  * lstm_adam: Input(6, 3) -> LSTM(5) -> Dense(3, softmax), Adam(1e-2),
    sparse categorical cross-entropy, accuracy.
  * masked_bigru_rmsprop: token ids (8 steps, right-padded with 0) ->
    Embedding(12, 4, mask_zero) -> Bidirectional(GRU(3, return_sequences))
    -> GlobalAveragePooling1D (masked) -> Dense(2, softmax), RMSprop(1e-2).
  * attention_block_adam: token ids (8 steps, right-padded) ->
    Embedding(12, 8, mask_zero) -> MultiHeadAttention(2, 4)(x, x) -> Add
    -> LayerNormalization -> GlobalAveragePooling1D -> Dense(2, softmax),
    Adam(1e-2).  (Keras' fused attention gives padded query steps uniform
    weights where strata gives zeros; those steps are masked out of the
    pooling, so neither the loss nor any gradient sees them.)

Determinism: ``np.random.default_rng(17)``; ``keras.backend.clear_session()``
before each case makes the layer names per case start at their defaults.
"""

import json
import os
import re

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

rng = np.random.default_rng(17)
L = keras.layers


def r4(a):
    return np.round(a, 4).astype("float32")


def strata_name(layer, w):
    parts = w.path.split("/")
    parts = parts[parts.index(layer.name) + 1:]
    inner = ".".join(re.sub(r"_\d+$", "", p) for p in parts if not p.endswith("_cell"))
    return f"{layer.name}.{inner}"


def weights_of(model):
    out = {}
    for layer in model.layers:
        for w in layer.weights:
            out[strata_name(layer, w)] = {"shape": list(w.shape), "data": np.asarray(w).ravel().tolist()}
    return out


def case(name, build, optimizer, x, y):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build()
    for w in model.weights:
        w.assign(r4(rng.normal(0.0, 0.3, size=w.shape)))
    initial = weights_of(model)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    evaluation = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    final = weights_of(model)
    for v in final.values():
        assert np.all(np.isfinite(v["data"])), name
    xj = {"shape": list(x.shape), "dtype": str(x.dtype), "data": x.ravel().tolist()}
    return {
        "name": name,
        "x": xj,
        "y": {"shape": list(y.shape), "dtype": "int64", "data": y.ravel().tolist()},
        "initial": initial,
        "final": final,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "evaluate": {k: float(v) for k, v in evaluation.items()},
    }


# Sequences whose label is the timestep-summed feature with the largest total.
xs = r4(rng.normal(size=(48, 6, 3)))
ys = np.argmax(xs.sum(axis=1), axis=1).astype("int64")

# Token rows of lengths 3..8, right-padded; label: does token 1 occur.
lengths = rng.integers(3, 9, size=48)
tokens = np.zeros((48, 8), dtype="int64")
for i, n in enumerate(lengths):
    tokens[i, :n] = rng.integers(1, 12, size=n)
yt = (tokens == 1).any(axis=1).astype("int64")


def lstm():
    return keras.Sequential([keras.Input((6, 3)), L.LSTM(5), L.Dense(3, activation="softmax")])


def bigru():
    return keras.Sequential([
        keras.Input((8,), dtype="int64"),
        L.Embedding(12, 4, mask_zero=True),
        L.Bidirectional(L.GRU(3, return_sequences=True)),
        L.GlobalAveragePooling1D(),
        L.Dense(2, activation="softmax"),
    ])


def attention_block():
    inp = keras.Input((8,), dtype="int64")
    x = L.Embedding(12, 8, mask_zero=True)(inp)
    a = L.MultiHeadAttention(2, 4)(x, x)
    x = L.LayerNormalization()(L.Add()([x, a]))
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(inp, L.Dense(2, activation="softmax")(x))


cases = [
    case("lstm_adam", lstm, keras.optimizers.Adam(learning_rate=1e-2), xs, ys),
    case("masked_bigru_rmsprop", bigru, keras.optimizers.RMSprop(learning_rate=1e-2), tokens, yt),
    case("attention_block_adam", attention_block, keras.optimizers.Adam(learning_rate=1e-2), tokens, yt),
]

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_sequence_training.json")
with open(out, "w") as f:
    json.dump({"keras": keras.__version__, "backend": keras.backend.backend(), "cases": cases}, f)
print("wrote", out, os.path.getsize(out), "bytes")
for c in cases:
    print(c["name"], list(c["final"])[:4], c["history"])
