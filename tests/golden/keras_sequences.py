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
Subtract, Multiply, Average, Maximum, Minimum, Dot; RepeatVector and Permute;
Bidirectional (every merge_mode, masks, return_state, initial states),
TimeDistributed; Attention, AdditiveAttention and MultiHeadAttention with
each kind of mask (query, value, key, causal, attention_mask) and their
scores.
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
  * Bidirectional rebuilds the layer from its config (forward_<name>) and a
    copy with go_backwards=True (backward_<name>), forces
    zero_output_for_mask=return_sequences on both, flips the backward
    sequence before merging, returns forward states then backward states.
  * MultiHeadAttention.call reads the query's mask from the tensor
    (keras_mask) and drops an eager ``query_mask=`` argument; value_mask and
    key_mask arguments are used.  Without dropout and returned scores JAX
    takes ``ops.dot_product_attention`` (a query step with every key masked
    gets uniform weights there; it fails when value_dim != key_dim); with
    returned scores the masked Softmax zeroes masked weights (such a step
    gets all-zero weights).  The masked cases here return their scores.
  * Attention/AdditiveAttention subtract 1e9 from masked scores and zero
    the output at masked query steps; the output mask is the query's.
"""

import json
import os
import re
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



# ---------------------------------------------------------------- wrappers,
# Dot and attention.  These cases may have a mask per input ("input_masks"),
# name their weights as strata does ("forward_lstm.kernel", "query.kernel":
# Keras' variable path without the layer's own name and the RNN cell), and
# list in "call_config" the Keras call arguments, which strata takes as
# layer arguments of the same name ("attention_mask" becomes
# "attention_mask_input" with the mask as the last input).


def strata_weight_name(class_name, path):
    parts = path.split("/")[1:]
    if class_name == "TimeDistributed":
        return parts[-1]
    # Keras counts layers of a class ("forward_lstm_17"); strata names the
    # directions after the wrapped layer's class alone.
    return ".".join(re.sub(r"_\d+$", "", p) for p in parts if not p.endswith("_cell"))


def add_call_case(name, class_name, layer, config, inputs, masks=None, call_kwargs=None, call_config=None):
    """``layer(inputs, mask=..., **call_kwargs)``; ``inputs`` is a list."""
    call_kwargs = dict(call_kwargs or {})
    arg = inputs if class_name in ("Attention", "AdditiveAttention", "Dot") else inputs[0]
    if class_name == "MultiHeadAttention":
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 and "attention_mask" not in call_kwargs else None
        kq = keras.ops.convert_to_tensor(query)
        kv = keras.ops.convert_to_tensor(value)
        kk = keras.ops.convert_to_tensor(key) if key is not None else None
        qm, vm, km = (list(masks or []) + [None, None, None])[:3]
        layer.build(query.shape, value.shape, None if key is None else key.shape)
    elif class_name in ("Attention", "AdditiveAttention", "Dot"):
        layer.build([x.shape for x in inputs])
    else:
        layer.build(inputs[0].shape)
    weights = {}
    order = []
    for w in layer.weights:
        value = rand(tuple(w.shape), -0.6, 0.6)
        w.assign(value)
        n = strata_weight_name(class_name, w.path)
        order.append(n)
        weights[n] = {"shape": list(value.shape), "data": [float(v) for v in np.ravel(value)]}
    if class_name == "MultiHeadAttention":
        # `MultiHeadAttention.call` reads the query's mask from the tensor
        # (an eager `query_mask=` is dropped), as in a model after Masking.
        if qm is not None:
            keras.src.backend.set_keras_mask(kq, qm)
        out = layer(kq, kv, key=kk, query_mask=qm, value_mask=vm, key_mask=km, **call_kwargs)
        out_masks = [None if qm is None else qm] + ([None] if call_kwargs.get("return_attention_scores") else [])
    else:
        if class_name in ("Attention", "AdditiveAttention", "Dot"):
            mask = masks
        else:
            mask = None if masks is None else masks[0]
            if len(inputs) > 1:
                call_kwargs["initial_state"] = list(inputs[1:])
        if mask is not None:
            call_kwargs["mask"] = mask
        out = layer(arg, **call_kwargs)
        out_masks = layer.compute_mask(arg, mask)
        out_masks = list(out_masks) if isinstance(out_masks, (list, tuple)) else [out_masks]
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    out_masks = out_masks + [None] * (len(outs) - len(out_masks))
    all_inputs = list(inputs)
    if "attention_mask" in call_kwargs:
        all_inputs = all_inputs + [call_kwargs["attention_mask"].astype(np.float32)]
    input_masks = list(masks or []) + [None] * (len(all_inputs) - len(masks or []))
    cases.append({
        "name": name,
        "class_name": class_name,
        "config": config,
        "call_config": call_config or {},
        "weights": weights,
        "weight_order": order,
        "inputs": [tensor_json(x) for x in all_inputs],
        "input_mask": None,
        "input_masks": [mask_json(m) for m in input_masks],
        "outputs": [tensor_json(o) for o in outs],
        "output_masks": [mask_json(m) for m in out_masks],
    })


def bidi(name, cell, cell_config, merge_mode="concat", mask=None, initial_state=False):
    layer = L.Bidirectional(getattr(L, cell)(**cell_config), merge_mode=merge_mode)
    x = rand((B, T, F))
    inputs = [x]
    if initial_state:
        n = 2 if cell == "LSTM" else 1
        inputs += [rand((B, cell_config["units"]), -0.5, 0.5) for _ in range(2 * n)]
    config = {"layer": {"class_name": cell, "config": cell_config}, "merge_mode": merge_mode}
    add_call_case(name, "Bidirectional", layer, config, inputs, masks=None if mask is None else [mask])


bidi("Bidirectional_LSTM_concat_sequences_right", "LSTM", {"units": U, "return_sequences": True}, mask=RIGHT)
bidi("Bidirectional_GRU_sum_last_left", "GRU", {"units": U}, "sum", mask=LEFT)
bidi("Bidirectional_SimpleRNN_mul_sequences", "SimpleRNN", {"units": U, "return_sequences": True}, "mul")
bidi("Bidirectional_LSTM_ave_state_holes", "LSTM", {"units": U, "return_state": True}, "ave", mask=HOLES)
bidi("Bidirectional_LSTM_none_sequences_state_right", "LSTM",
     {"units": U, "return_sequences": True, "return_state": True}, None, mask=RIGHT)
bidi("Bidirectional_GRU_concat_initial_state_left", "GRU", {"units": U, "return_sequences": True},
     mask=LEFT, initial_state=True)
bidi("Bidirectional_LSTM_concat_initial_state", "LSTM", {"units": 2, "return_state": True}, initial_state=True)

add_call_case("TimeDistributed_Dense_right", "TimeDistributed", L.TimeDistributed(L.Dense(3, activation="tanh")),
              {"layer": {"class_name": "Dense", "config": {"units": 3, "activation": "tanh"}}},
              [rand((B, T, F))], masks=[RIGHT])
add_call_case("TimeDistributed_Dense_4d", "TimeDistributed", L.TimeDistributed(L.Dense(2)),
              {"layer": {"class_name": "Dense", "config": {"units": 2}}}, [rand((B, T, 2, F))])

add_call_case("Dot_rank2", "Dot", L.Dot(axes=1), {"axes": 1}, [rand((B, 4)), rand((B, 4))])
add_call_case("Dot_last_axes", "Dot", L.Dot(axes=-1), {"axes": -1}, [rand((B, 4, 3)), rand((B, 5, 3))])
add_call_case("Dot_axes_1_2", "Dot", L.Dot(axes=(1, 2)), {"axes": [1, 2]}, [rand((B, 3, 5)), rand((B, 4, 3))])
add_call_case("Dot_normalize", "Dot", L.Dot(axes=1, normalize=True), {"axes": 1, "normalize": True},
              [rand((B, 4)), rand((B, 4))])
add_call_case("Dot_3d_2d", "Dot", L.Dot(axes=(2, 1)), {"axes": [2, 1]}, [rand((B, 3, 4)), rand((B, 4))])

TQ, TV = 4, 5
QMASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)


def attn(name, cls, config, key=False, masks=None, call_kwargs=None, dv=3):
    inputs = [rand((B, TQ, 3)), rand((B, TV, dv))]
    if key:
        inputs.append(rand((B, TV, 3)))
    add_call_case(name, cls, getattr(L, cls)(**config), config, inputs, masks=masks,
                  call_kwargs=call_kwargs, call_config=call_kwargs)


attn("Attention_dot", "Attention", {})
attn("Attention_scale_key", "Attention", {"use_scale": True}, key=True, dv=2)
attn("Attention_concat", "Attention", {"score_mode": "concat"})
attn("Attention_concat_scale_masked_scores", "Attention", {"score_mode": "concat", "use_scale": True},
     masks=[QMASK, RIGHT], call_kwargs={"return_attention_scores": True})
attn("Attention_causal_value_mask_scores", "Attention", {"use_scale": True}, masks=[None, LEFT],
     call_kwargs={"use_causal_mask": True, "return_attention_scores": True})
attn("AdditiveAttention", "AdditiveAttention", {})
attn("AdditiveAttention_no_scale_key", "AdditiveAttention", {"use_scale": False}, key=True, dv=2)
attn("AdditiveAttention_masked_scores", "AdditiveAttention", {}, masks=[QMASK, RIGHT],
     call_kwargs={"return_attention_scores": True})
attn("AdditiveAttention_causal", "AdditiveAttention", {}, call_kwargs={"use_causal_mask": True})


def mha(name, config, q=(B, TQ, 6), v=(B, TV, 5), key=None, masks=None, call_kwargs=None, call_config=None):
    inputs = [rand(q), rand(v)] + ([rand(key)] if key else [])
    add_call_case(name, "MultiHeadAttention", L.MultiHeadAttention(**config), config, inputs, masks=masks,
                  call_kwargs=call_kwargs, call_config=call_config if call_config is not None else call_kwargs)


mha("MultiHeadAttention_self", {"num_heads": 2, "key_dim": 3}, q=(B, T, 6), v=(B, T, 6))
mha("MultiHeadAttention_cross_key_value_dim_output_shape",
    {"num_heads": 3, "key_dim": 2, "value_dim": 4, "output_shape": 7}, key=(B, TV, 3),
    call_kwargs={"return_attention_scores": True})  # JAX's fused path needs value_dim == key_dim
mha("MultiHeadAttention_no_bias", {"num_heads": 2, "key_dim": 2, "use_bias": False})
mha("MultiHeadAttention_value_mask", {"num_heads": 2, "key_dim": 3}, masks=[None, RIGHT])
mha("MultiHeadAttention_query_value_masks_scores", {"num_heads": 2, "key_dim": 3}, masks=[QMASK, LEFT],
    call_kwargs={"return_attention_scores": True})
mha("MultiHeadAttention_key_mask_scores", {"num_heads": 2, "key_dim": 3}, key=(B, TV, 4), masks=[None, None, RIGHT],
    call_kwargs={"return_attention_scores": True})
mha("MultiHeadAttention_causal", {"num_heads": 2, "key_dim": 3}, q=(B, T, 4), v=(B, T, 4),
    call_kwargs={"use_causal_mask": True})
mha("MultiHeadAttention_causal_padded_scores", {"num_heads": 1, "key_dim": 4}, q=(B, T, 4), v=(B, T, 4),
    masks=[RIGHT, RIGHT], call_kwargs={"use_causal_mask": True, "return_attention_scores": True})
ATT = rng.uniform(size=(B, TQ, TV)) < 0.7
ATT[:, :, 0] = True
mha("MultiHeadAttention_attention_mask_scores", {"num_heads": 2, "key_dim": 3},
    call_kwargs={"attention_mask": ATT, "return_attention_scores": True},
    call_config={"attention_mask_input": True, "return_attention_scores": True})

with open(OUT_PATH, "w") as f:
    json.dump({"keras_version": keras.__version__, "jax_version": jax.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {OUT_PATH}")
