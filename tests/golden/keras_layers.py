"""Golden reference values for strata's Keras-style layers, produced by Keras 3.

What it produces
----------------
``tests/golden/keras_layers.json`` (next to this script): a list of test cases,
one per (layer, config, input) combination, with fixed weights, fixed inputs,
optional input masks, and the output (and output mask) computed by Keras 3 on
the JAX CPU backend.  A Rust test reads this file and checks strata's layers
against it.

How to run (from the repository root, /work/main)
-------------------------------------------------
    KERAS_BACKEND=jax /work/keras-venv/bin/python tests/golden/keras_layers.py

JSON format
-----------
    {"keras_version": str, "jax_version": str, "cases": [case, ...]}

each case:

    {"name":        unique descriptive name,
     "class_name":  strata / Keras class name, e.g. "Dense",
     "config":      strata config keys only; keys at their default are omitted,
     "weights":     {keras_weight_name: {"shape": [...], "data": [row-major]}},
     "inputs":      [{"shape": [...], "dtype": "float32"|"int64", "data": [...]}],
     "input_masks": [null | {"shape": [...], "data": [0./1. floats]}]  (one per input),
     "training":    false,
     "output":      {"shape": [...], "data": [...]},
     "output_mask": null | {"shape": [...], "data": [0./1. floats]},
     "reference":   "keras" (value computed by Keras) | "numpy" (computed by NumPy),
     "note":        optional free-text remark}

Determinism: every input and weight comes from ``np.random.default_rng(0)``
(or is written out by hand), rounded to 4 decimals and cast to float32; Keras'
random initialisers are never relied on (weights are always overwritten with
``layer.set_weights``).  All numbers are float32 values written as JSON numbers
via ``float(x)``, i.e. the exact float32 value, losslessly.

Findings about the installed Keras (recorded in case names / notes):
  * ``keras.activations.gelu`` defaults to ``approximate=False`` (exact erf
    form), so the "gelu" Activation case is named ``activation_gelu_exact``.
  * ``leaky_relu`` defaults to ``negative_slope=0.2``.
  * ``hard_sigmoid`` in Keras 3 is ``relu6(x + 3) / 6`` (slope 1/6), NOT the
    Keras 2 ``clip(0.2 * x + 0.5, 0, 1)``.
  * ``GlobalMaxPooling1D.call`` takes no ``mask`` argument: calling it with
    ``mask=`` raises ``TypeError`` (and ``supports_masking`` is False).  The
    masked GlobalMaxPooling1D case is therefore computed with NumPy (max over
    the unmasked timesteps) and marked ``"reference": "numpy"``.
  * ``Masking`` zeroes masked timesteps (it writes 0, not ``mask_value``).
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
OUT_PATH = os.path.join(HERE, "keras_layers.json")

# One generator for the whole script: the order of draws below is part of the
# golden data, so append new cases at the end to keep existing ones stable.
rng = np.random.default_rng(0)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def rand(shape, lo=-1.0, hi=1.0):
    """Uniform float32 array in [lo, hi), rounded to 4 decimals."""
    return np.round(rng.uniform(lo, hi, size=shape), 4).astype(np.float32)


def tensor_json(a, dtype=None):
    """Shape + flat row-major data of an array, for the JSON file."""
    a = np.asarray(a)
    if dtype is None:
        dtype = "int64" if np.issubdtype(a.dtype, np.integer) else "float32"
    if dtype == "int64":
        data = [int(v) for v in a.astype(np.int64).ravel()]
    else:
        data = [float(v) for v in a.astype(np.float32).ravel()]
    return {"shape": list(a.shape), "dtype": dtype, "data": data}


def plain_json(a):
    """Like tensor_json for float data but without the dtype key."""
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


def mask_json(m):
    """Boolean mask as 0./1. floats (or None)."""
    if m is None:
        return None
    return plain_json(np.asarray(m).astype(np.float32))


def build_with_weights(layer, input_shapes, weight_fn=rand):
    """Build ``layer`` and replace every weight by a deterministic array.

    Returns {keras_weight_name: np.ndarray} in the layer's weight order.
    """
    if len(input_shapes) == 1:
        layer.build(tuple(input_shapes[0]))
    else:
        layer.build([tuple(s) for s in input_shapes])
    values = [weight_fn(tuple(v.shape)) for v in layer.weights]
    if values:
        layer.set_weights(values)
    return {v.name: np.asarray(val) for v, val in zip(layer.weights, values)}


cases = []


def add_case(name, class_name, config, layer, inputs, input_masks=None,
             weights=None, reference="keras", expected=None,
             expected_mask=None, compute_mask=False, note=None):
    """Run ``layer`` on ``inputs`` (inference mode) and record the case.

    ``expected`` / ``expected_mask`` override the Keras result (NumPy
    references).  ``compute_mask`` asks Keras for the output mask via
    ``layer.compute_mask``.
    """
    assert all(c["name"] != name for c in cases), name
    if input_masks is None:
        input_masks = [None] * len(inputs)
    assert len(input_masks) == len(inputs)

    if expected is None:
        x = inputs[0] if len(inputs) == 1 else list(inputs)
        kwargs = {"training": False}
        if any(m is not None for m in input_masks):
            kwargs["mask"] = input_masks[0] if len(inputs) == 1 else input_masks
        out = np.asarray(layer(x, **kwargs))
    else:
        out = np.asarray(expected)

    out_mask = expected_mask
    if compute_mask and out_mask is None:
        x = inputs[0] if len(inputs) == 1 else list(inputs)
        m = input_masks[0] if len(inputs) == 1 else input_masks
        res = layer.compute_mask(x, m)
        out_mask = None if res is None else np.asarray(res)

    case = {
        "name": name,
        "class_name": class_name,
        "config": config,
        "weights": {k: plain_json(v) for k, v in (weights or {}).items()},
        "inputs": [tensor_json(a) for a in inputs],
        "input_masks": [mask_json(m) for m in input_masks],
        "training": False,
        "output": plain_json(out),
        "output_mask": mask_json(out_mask),
        "reference": reference,
    }
    if note:
        case["note"] = note
    cases.append(case)
    return out


# --------------------------------------------------------------------------
# Dense
# --------------------------------------------------------------------------
# config: units, activation (omitted when linear), use_bias (omitted when True)
for name, act, use_bias, in_shape in [
    ("dense_relu", "relu", True, (3, 5)),
    ("dense_softmax", "softmax", True, (3, 5)),
    ("dense_linear_no_bias", "linear", False, (3, 5)),
    ("dense_rank3_tanh", "tanh", True, (2, 3, 5)),  # applies to last axis
]:
    cfg = {"units": 4}
    if act != "linear":
        cfg["activation"] = act
    if not use_bias:
        cfg["use_bias"] = False
    layer = keras.layers.Dense(4, activation=act, use_bias=use_bias)
    w = build_with_weights(layer, [in_shape])
    x = rand(in_shape, -2.0, 2.0)
    add_case(name, "Dense", cfg, layer, [x], weights=w)

# --------------------------------------------------------------------------
# Activation (one case per activation)
# --------------------------------------------------------------------------
# Hand-picked values over about [-4, 4], including 0 and values near 0.
ACT_X = np.array(
    [[-4.0, -2.5, -1.0, -0.3, -0.0001, 0.0],
     [0.0002, 0.05, 0.7, 1.5, 2.75, 4.0]], dtype=np.float32)
# exponential: keep within [-3, 3]
EXP_X = np.array(
    [[-3.0, -2.0, -1.0, -0.3, -0.0001, 0.0],
     [0.0002, 0.05, 0.7, 1.5, 2.25, 3.0]], dtype=np.float32)

GELU_DEFAULT_APPROX = keras.src.activations.activations.gelu.__defaults__[0]
assert GELU_DEFAULT_APPROX is False, GELU_DEFAULT_APPROX  # documented above

for act in ["linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu",
            "sigmoid", "hard_sigmoid", "tanh", "softmax", "log_softmax",
            "softplus", "softsign", "silu", "mish", "exponential"]:
    name = "activation_" + act
    note = None
    if act == "gelu":
        # Keras 3 default: approximate=False (exact 0.5*x*(1+erf(x/sqrt(2))))
        name = "activation_gelu_exact"
        note = "keras.activations.gelu default approximate=False (erf form)"
    elif act == "leaky_relu":
        note = "Keras 3 default negative_slope=0.2"
    elif act == "hard_sigmoid":
        note = "Keras 3 hard_sigmoid = relu6(x + 3) / 6"
    elif act in ("softmax", "log_softmax"):
        note = "over the last axis"
    x = EXP_X if act == "exponential" else ACT_X
    add_case(name, "Activation", {"activation": act},
             keras.layers.Activation(act), [x], note=note)

# --------------------------------------------------------------------------
# Embedding
# --------------------------------------------------------------------------
# config: input_dim, output_dim, mask_zero (omitted when False)
ids = np.array([[0, 3, 7, 1], [5, 0, 0, 9]], dtype=np.int64)
for name, mask_zero in [("embedding", False), ("embedding_mask_zero", True)]:
    cfg = {"input_dim": 10, "output_dim": 3}
    if mask_zero:
        cfg["mask_zero"] = True
    layer = keras.layers.Embedding(10, 3, mask_zero=mask_zero)
    w = build_with_weights(layer, [ids.shape])
    add_case(name, "Embedding", cfg, layer, [ids], weights=w,
             compute_mask=mask_zero)

# --------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------
# config: mask_value (omitted when 0.0).  A timestep is masked when ALL its
# features equal mask_value; Keras writes 0 into masked timesteps.
for name, mv in [("masking_zero", 0.0), ("masking_value_minus1", -1.0)]:
    x = rand((2, 4, 3))
    x[0, 1, :] = mv           # fully masked step
    x[1, 0, :] = mv           # fully masked step
    x[1, 3, :] = mv           # fully masked step
    x[0, 3, 0] = mv           # partially equal -> NOT masked
    cfg = {} if mv == 0.0 else {"mask_value": mv}
    add_case(name, "Masking", cfg, keras.layers.Masking(mask_value=mv), [x],
             compute_mask=True)

# --------------------------------------------------------------------------
# Flatten / Reshape / Dropout
# --------------------------------------------------------------------------
x = rand((2, 3, 4))
add_case("flatten_rank3", "Flatten", {}, keras.layers.Flatten(), [x])
x = rand((2, 2, 3, 2))
add_case("flatten_rank4", "Flatten", {}, keras.layers.Flatten(), [x])

x = rand((2, 12))
add_case("reshape_3x4", "Reshape", {"target_shape": [3, 4]},
         keras.layers.Reshape((3, 4)), [x])
x = rand((2, 3, 4))
add_case("reshape_minus1", "Reshape", {"target_shape": [-1, 2]},
         keras.layers.Reshape((-1, 2)), [x])

x = rand((2, 5))
add_case("dropout_inference", "Dropout", {"rate": 0.5},
         keras.layers.Dropout(0.5), [x],
         note="training=false: identity")

# --------------------------------------------------------------------------
# Merge layers
# --------------------------------------------------------------------------
# Concatenate config: axis (omitted when -1)
a, b = rand((2, 3)), rand((2, 2))
add_case("concatenate_axis_last", "Concatenate", {},
         keras.layers.Concatenate(axis=-1), [a, b])
a, b = rand((2, 2, 3)), rand((2, 1, 3))
add_case("concatenate_axis1", "Concatenate", {"axis": 1},
         keras.layers.Concatenate(axis=1), [a, b])

a, b = rand((2, 4)), rand((2, 4))
add_case("add_2_inputs", "Add", {}, keras.layers.Add(), [a, b])
a, b, c = rand((2, 3, 2)), rand((2, 3, 2)), rand((2, 3, 2))
add_case("add_3_inputs", "Add", {}, keras.layers.Add(), [a, b, c])

# --------------------------------------------------------------------------
# Global pooling (1D, channels_last: [batch, steps, features])
# --------------------------------------------------------------------------
POOL_MASK = np.array([[1, 1, 0, 0], [1, 0, 1, 1]], dtype=bool)

x = rand((2, 4, 3))
add_case("global_avg_pool1d", "GlobalAveragePooling1D", {},
         keras.layers.GlobalAveragePooling1D(), [x])
x = rand((2, 4, 3))
add_case("global_avg_pool1d_masked", "GlobalAveragePooling1D", {},
         keras.layers.GlobalAveragePooling1D(), [x], input_masks=[POOL_MASK],
         compute_mask=True,
         note="mean over unmasked timesteps; output mask is None")

x = rand((2, 4, 3))
add_case("global_max_pool1d", "GlobalMaxPooling1D", {},
         keras.layers.GlobalMaxPooling1D(), [x])

# Keras 3 GlobalMaxPooling1D does not accept a mask (TypeError on mask=).
x = rand((2, 4, 3))
try:
    keras.layers.GlobalMaxPooling1D()(x, mask=POOL_MASK)
    gmp_accepts_mask = True
except TypeError:
    gmp_accepts_mask = False
assert not gmp_accepts_mask, "Keras now accepts a mask: revisit this case"
masked_max = np.where(POOL_MASK[:, :, None], x, -np.inf).max(axis=1)
add_case("global_max_pool1d_masked_numpy", "GlobalMaxPooling1D", {},
         None, [x], input_masks=[POOL_MASK], reference="numpy",
         expected=masked_max,
         note="Keras 3 GlobalMaxPooling1D ignores/rejects masks (call() has "
              "no mask arg, TypeError); expected = NumPy max over unmasked "
              "timesteps")

# --------------------------------------------------------------------------
# LayerNormalization (last axis)
# --------------------------------------------------------------------------
# config: epsilon (omitted when 1e-3), center, scale (omitted when True).
# gamma around 1, beta around 0, both non-trivial.
def ln_weights(shape):
    return rand(shape, -0.5, 0.5)


for name, eps, center, scale, in_shape in [
    ("layer_norm", 1e-3, True, True, (3, 5)),
    ("layer_norm_rank3", 1e-3, True, True, (2, 3, 4)),
    ("layer_norm_eps1e-5", 1e-5, True, True, (3, 5)),
    ("layer_norm_no_center", 1e-3, False, True, (3, 5)),
    ("layer_norm_no_scale", 1e-3, True, False, (3, 5)),
]:
    cfg = {}
    if eps != 1e-3:
        cfg["epsilon"] = eps
    if not center:
        cfg["center"] = False
    if not scale:
        cfg["scale"] = False
    layer = keras.layers.LayerNormalization(epsilon=eps, center=center,
                                            scale=scale)
    layer.build(in_shape)
    vals = []
    for v in layer.weights:
        if v.name == "gamma":
            vals.append(np.round(1.0 + ln_weights(tuple(v.shape)), 4)
                        .astype(np.float32))
        else:
            vals.append(ln_weights(tuple(v.shape)))
    layer.set_weights(vals)
    w = {v.name: val for v, val in zip(layer.weights, vals)}
    # offset + scale the input so normalisation is doing real work
    x = (rand(in_shape, -2.0, 2.0) + np.float32(0.5)).astype(np.float32)
    add_case(name, "LayerNormalization", cfg, layer, [x], weights=w)

# --------------------------------------------------------------------------
# The tanh approximation of GELU (strata's "gelu_tanh"; Keras'
# gelu(approximate=True)). Appended last to keep earlier draws stable.
# --------------------------------------------------------------------------
add_case("activation_gelu_tanh", "Activation", {"activation": "gelu_tanh"},
         keras.layers.Activation(
             lambda t: keras.activations.gelu(t, approximate=True)),
         [ACT_X], note="keras.activations.gelu(x, approximate=True)")

# --------------------------------------------------------------------------
# write
# --------------------------------------------------------------------------
doc = {
    "keras_version": keras.__version__,
    "jax_version": jax.__version__,
    "cases": cases,
}
with open(OUT_PATH, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print("wrote %d cases to %s (%d bytes)"
      % (len(cases), OUT_PATH, os.path.getsize(OUT_PATH)))
