"""Golden reference values for strata's sequence layers, produced by Keras 3.

What it produces
----------------
``tests/golden/keras_sequences.json`` (next to this script): test cases, one
per (layer, config, inputs, mask) combination, with fixed weights and inputs
and every output (and output mask) Keras 3 computes on the JAX CPU backend.
Covers SimpleRNN, LSTM and GRU: last output and return_sequences,
return_state (several outputs), go_backwards, initial_state, right- and
left-padded masks (and a fully masked row), zero_output_for_mask,
reset_after False, use_bias False, non-default activations; the merges
Subtract, Multiply, Average, Maximum, Minimum; RepeatVector and Permute.
``tests/golden_sequences.rs`` checks strata against it on every backend.

How to run (from the repository root)
-------------------------------------
    python3 -m venv keras-venv && keras-venv/bin/pip install keras jax safetensors
    KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_sequences.py

JSON format
-----------
    {"keras_version": str, "jax_version": str, "cases": [case, ...]}

each case:

    {"name":         unique descriptive name,
     "class_name":   Keras class name ("LSTM"),
     "config":       only the Keras config keys the case sets,
     "weights":      {keras_weight_name: {"shape": [...], "data": [...]}},
     "weight_order": [keras_weight_name, ...]  (order of ``layer.weights``),
     "inputs":       [sequence, initial states...] as {"shape", "dtype", "data"},
     "input_mask":   null or {"shape": [batch, time], "data": [0/1 ...]}
                     (mask of the sequence input),
     "outputs":      [{"shape", "data"}, ...]  (one per Keras output),
     "output_masks": [null or {"shape", "data"}, ...]  (one per output)}

Findings about the installed Keras (3.15.1, JAX 0.10.2):
  * On the JAX CPU backend (the cuDNN path needs a GPU) every recurrent layer
    runs ``backend.rnn`` with ``lax.scan`` (unroll False).  A masked timestep
    keeps every state and outputs the previous output, which is state 0
    (h) — the initial state at a leading masked step, not zeros.  With
    ``zero_output_for_mask`` a masked step outputs zeros instead (states are
    still carried).
  * go_backwards walks from the last step and returns the sequence in that
    (reversed) order; the last output is the one of step 0.
  * LSTM gate order i, f, c, o; GRU z, r, h; GRU reset_after bias [2, 3u]
    (row 0 input bias, row 1 recurrent bias).
  * compute_mask: the input mask when return_sequences, else None; None for
    every state.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() != "jax":
    sys.exit("run with KERAS_BACKEND=jax (got %r)" % keras.backend.backend())

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "keras_sequences.json")

rng = np.random.default_rng(16)
L = keras.layers


def rand(shape, lo=-1.0, hi=1.0):
    return np.round(rng.uniform(lo, hi, size=shape), 4).astype(np.float32)


def tensor_json(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "dtype": "float32", "data": [float(v) for v in a.ravel()]}


def mask_json(m):
    if m is None:
        return None
    m = np.asarray(m).astype(np.float32)
    return {"shape": list(m.shape), "data": [float(v) for v in m.ravel()]}


cases = []

B, T, F, U = 3, 5, 4, 3
RIGHT = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=bool)
LEFT = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]], dtype=bool)
HOLES = np.array([[1, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 1, 0, 1, 1]], dtype=bool)


def add_case(name, class_name, kwargs, mask=None, initial_state=False, features=F, steps=T):
    layer = getattr(L, class_name)(**kwargs)
    x = rand((B, steps, features))
    num_states = 2 if class_name == "LSTM" else 1
    states = [rand((B, kwargs["units"]), -0.5, 0.5) for _ in range(num_states)] if initial_state else None
    layer.build((B, steps, features))
    weights = {}
    for w in layer.weights:
        value = rand(tuple(w.shape), -0.6, 0.6)
        w.assign(value)
        weights[w.name] = {"shape": list(value.shape), "data": [float(v) for v in value.ravel()]}
    call_kwargs = {}
    if mask is not None:
        call_kwargs["mask"] = mask
    if states is not None:
        call_kwargs["initial_state"] = states
    out = layer(x, **call_kwargs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    masks = layer.compute_mask(x, mask)
    masks = list(masks) if isinstance(masks, (list, tuple)) else [masks]
    assert len(masks) == len(outs), (name, len(masks), len(outs))
    cases.append({
        "name": name,
        "class_name": class_name,
        "config": kwargs,
        "weights": weights,
        "weight_order": [w.name for w in layer.weights],
        "inputs": [tensor_json(x)] + [tensor_json(s) for s in (states or [])],
        "input_mask": mask_json(mask),
        "outputs": [tensor_json(o) for o in outs],
        "output_masks": [mask_json(m) for m in masks],
    })


for cls in ["SimpleRNN", "LSTM", "GRU"]:
    add_case(f"{cls}_last", cls, {"units": U})
    add_case(f"{cls}_sequences", cls, {"units": U, "return_sequences": True})
    add_case(f"{cls}_state", cls, {"units": U, "return_state": True})
    add_case(f"{cls}_sequences_state", cls, {"units": U, "return_sequences": True, "return_state": True})
    add_case(f"{cls}_backwards", cls, {"units": U, "go_backwards": True, "return_sequences": True})
    add_case(f"{cls}_initial_state", cls, {"units": U, "return_state": True}, initial_state=True)
    add_case(f"{cls}_right_padded", cls, {"units": U}, mask=RIGHT)
    add_case(f"{cls}_left_padded", cls, {"units": U}, mask=LEFT)
    add_case(f"{cls}_right_padded_sequences_state", cls,
             {"units": U, "return_sequences": True, "return_state": True}, mask=RIGHT)
    add_case(f"{cls}_left_padded_initial_state_sequences", cls,
             {"units": U, "return_sequences": True}, mask=LEFT, initial_state=True)
    add_case(f"{cls}_holes_backwards", cls,
             {"units": U, "return_sequences": True, "go_backwards": True, "return_state": True}, mask=HOLES)
    add_case(f"{cls}_zero_output_for_mask", cls,
             {"units": U, "return_sequences": True, "zero_output_for_mask": True}, mask=RIGHT)
    add_case(f"{cls}_no_bias", cls, {"units": U, "use_bias": False, "return_sequences": True})
    add_case(f"{cls}_one_step", cls, {"units": 2}, steps=1)

add_case("SimpleRNN_relu", "SimpleRNN", {"units": U, "activation": "relu", "return_sequences": True})
add_case("LSTM_activations", "LSTM",
         {"units": U, "activation": "relu", "recurrent_activation": "hard_sigmoid", "return_sequences": True})
add_case("LSTM_no_forget_bias", "LSTM", {"units": U, "unit_forget_bias": False})
add_case("GRU_reset_before", "GRU", {"units": U, "reset_after": False, "return_sequences": True})
add_case("GRU_reset_before_masked", "GRU", {"units": U, "reset_after": False, "return_state": True}, mask=LEFT)
add_case("GRU_reset_before_no_bias", "GRU", {"units": U, "reset_after": False, "use_bias": False})
add_case("GRU_activations", "GRU", {"units": U, "activation": "sigmoid", "recurrent_activation": "tanh"})
add_case("LSTM_wide", "LSTM", {"units": 7, "return_sequences": True}, features=2)



def add_merge_case(name, class_name, n_inputs, shape=(B, 3, 4)):
    layer = getattr(L, class_name)()
    xs = [rand(shape) for _ in range(n_inputs)]
    out = layer(xs)
    cases.append({
        "name": name,
        "class_name": class_name,
        "config": {},
        "weights": {},
        "weight_order": [],
        "inputs": [tensor_json(x) for x in xs],
        "input_mask": None,
        "outputs": [tensor_json(out)],
        "output_masks": [None],
    })


add_merge_case("Subtract", "Subtract", 2)
add_merge_case("Multiply_3", "Multiply", 3)
add_merge_case("Average_3", "Average", 3)
add_merge_case("Maximum_2", "Maximum", 2, shape=(B, 5))
add_merge_case("Minimum_4", "Minimum", 4)



def add_reshape_case(name, class_name, kwargs, shape):
    layer = getattr(L, class_name)(**kwargs)
    x = rand(shape)
    out = layer(x)
    cases.append({
        "name": name,
        "class_name": class_name,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "weights": {},
        "weight_order": [],
        "inputs": [tensor_json(x)],
        "input_mask": None,
        "outputs": [tensor_json(out)],
        "output_masks": [None],
    })


add_reshape_case("RepeatVector", "RepeatVector", {"n": 3}, (B, 4))
add_reshape_case("Permute_2_1", "Permute", {"dims": (2, 1)}, (B, 3, 4))
add_reshape_case("Permute_3_1_2", "Permute", {"dims": (3, 1, 2)}, (B, 2, 3, 4))

with open(OUT_PATH, "w") as f:
    json.dump({"keras_version": keras.__version__, "jax_version": jax.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {OUT_PATH}")
