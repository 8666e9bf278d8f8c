"""Golden reference values for strata's vision layers, produced by Keras 3.

What it produces
----------------
``tests/golden/keras_vision.json`` (next to this script): a list of test cases,
one per (layer, config, input) combination, with fixed weights, fixed inputs
and the output computed by Keras 3 on the JAX CPU backend.  Covers
convolutions (1D/2D, depthwise, separable, transposed), pooling, global
pooling, padding / cropping / upsampling, BatchNormalization,
GroupNormalization and the preprocessing layers Rescaling, Normalization,
Resizing and CenterCrop.  A Rust test reads this file and checks strata's
layers against it.

How to run (from the repository root, /work/main)
-------------------------------------------------
    python3 -m venv /work/keras-venv
    /work/keras-venv/bin/pip install keras jax safetensors   # CPU JAX
    KERAS_BACKEND=jax /work/keras-venv/bin/python tests/golden/keras_vision.py

JSON format
-----------
The same case format as ``keras_layers.json`` (see keras_layers.py), plus
three fields:

    {"keras_version": str, "jax_version": str, "cases": [case, ...]}

each case:

    {"name":         unique descriptive name,
     "class_name":   Keras class name, e.g. "Conv2D",
     "config":       Keras' own config keys, ONLY those the case sets (keys at
                     their default are omitted), with Keras' value forms as
                     ``layer.get_config()`` returns them; tuples are JSON
                     lists (kernel_size [3] for 1D, [3, 3] for 2D; padding of
                     ZeroPadding2D / cropping of Cropping2D as [[t, b], [l, r]]),
     "weights":      {keras_weight_name: {"shape": [...], "data": [row-major]}},
     "weight_order": [keras_weight_name, ...]  (order of ``layer.weights``),
     "trainable":    {keras_weight_name: bool},
     "inputs":       [{"shape": [...], "dtype": "float32", "data": [...]}],
     "input_masks":  [null]  (one per input; no masks in this file),
     "training":     false, or true for the BatchNormalization cases that use
                     batch statistics,
     "output":       {"shape": [...], "data": [...]},
     "output_mask":  null,
     "weights_after": only when "training" is true: every weight after the
                     call (BatchNormalization's updated moving statistics),
     "reference":    "keras",
     "note":         optional free-text remark}

Data layout: channels_last ([batch, (spatial...), channels]) unless the case's
config has ``"data_format": "channels_first"``.  Kernels are in Keras layout:
Conv1D [k, in/groups, filters]; Conv2D [kh, kw, in/groups, filters];
DepthwiseConv2D [kh, kw, in, depth_multiplier]; SeparableConv2D
depthwise_kernel [kh, kw, in, dm] + pointwise_kernel [1, 1, in*dm, filters];
Conv1DTranspose [k, filters, in]; Conv2DTranspose [kh, kw, filters, in].

Determinism: every input and weight comes from ``np.random.default_rng(15)``
(or is written out by hand), rounded to 4 decimals and cast to float32; Keras'
random initialisers are never relied on (weights are always overwritten with
``layer.set_weights``).  All numbers are float32 values written as JSON numbers
via ``float(x)``, i.e. the exact float32 value, losslessly.  The order of
draws is part of the golden data: append new cases at the end.

Findings about the installed Keras (3.15.1, JAX 0.10.2; checked by asserts
below where possible):
  * DepthwiseConv2D's kernel weight is named ``"kernel"`` (NOT
    ``"depthwise_kernel"``); shape [kh, kw, in, depth_multiplier]; output
    channel c*dm + m uses input channel c and multiplier m.  SeparableConv2D's
    weights are ``depthwise_kernel``, ``pointwise_kernel``, ``bias``.
  * Conv/ConvTranspose reject ``strides > 1`` together with
    ``dilation_rate > 1`` (ValueError at construction), so there is no
    strided+dilated case.  ``padding="causal"`` exists only for Conv1D
    (left-pads dilation*(k-1) then runs "valid").
  * "same" padding (conv and pooling) follows TF: total pad
    max((ceil(n/s)-1)*s + k_eff - n, 0), the smaller half on the left/top
    (so stride 2, k 3 on an even size pads 0 before, 1 after).
  * AveragePooling with padding "same" divides by the number of REAL
    (non-padded) cells in the window (Keras pools a ones-tensor for the
    counts); checked against NumPy below.
  * Conv transpose output size (per spatial dim, k_eff = (k-1)*d + 1):
      valid, output_padding None: (n-1)*s + max(k_eff, s)
      valid, output_padding p:    (n-1)*s + k_eff + p
      same,  output_padding None: n*s
      same,  output_padding p:    (n-1)*s + k_eff%2 + p
    output_padding must be < strides (ValueError otherwise).  The values are
    the scatter form y[i*s + j*d - crop] += x[i] * w[j] (kernel NOT flipped)
    over the full length (n-1)*s + k_eff (+ zeros on the right), cropped by
    ``crop`` on the left, crop = k_eff - 1 - left_pad with the JAX padding
    left_pad: valid -> k_eff-1 (crop 0); same -> min(ceil(P/2), k_eff-1)
    where P = s + k_eff - 2 (output_padding None) or k_eff + k_eff%2 - 2 + p.
    Each transpose case is checked against this NumPy formula and its crop is
    in its note.
  * Conv2DTranspose with dilation_rate 2 (strides 1) works on JAX.
  * BatchNormalization: weights gamma, beta (trainable), moving_mean,
    moving_variance (non-trainable), in that order; center=False drops beta,
    scale=False drops gamma.  Inference: (x - mm) / sqrt(mv + eps) * g + b.
    training=True uses the biased (1/N) batch variance and updates
    moving = moving * momentum + batch * (1 - momentum), momentum 0.99 by
    default (the biased batch variance also goes into moving_variance).
  * GroupNormalization: weights gamma, beta; groups=-1 means one group per
    channel (instance norm); epsilon default 1e-3; variance biased.
  * Normalization with mean/variance constructor args has NO weights
    (``layer.weights == []``); they are constants.  After ``adapt()`` the
    weights are ``mean``, ``variance`` (float32, shape [features]) and
    ``count`` (all non-trainable).  ``count`` is an int32 scalar kept only for
    loading old saved models: adapt() never updates it (it stays 0), and a
    second adapt() replaces (does not merge) the state.  The adapted variance
    is the population (1/N) variance.  The call is
    (x - mean) / max(sqrt(variance), 1e-7).
  * Resizing defaults: interpolation "bilinear", antialias False,
    crop_to_aspect_ratio False, pad_to_aspect_ratio False; it is
    ``jax.image.resize`` (half-pixel centres; bilinear/nearest without
    antialias are plain triangle / box sampling; edges clamp).  Nearest picks
    source index floor((i + 0.5) * in / out).  crop_to_aspect_ratio first
    centre-crops to the target aspect ratio (crop_h = min(h, int(w*th/tw)),
    crop_w = min(w, int(h*tw/th)), start = int((h - crop_h)/2)) and then
    resizes.
  * CenterCrop: if the target is <= the input in BOTH dims it slices
    [ (h-th)//2 : +th, (w-tw)//2 : +tw ]; otherwise (target larger in any dim)
    it does NOT pad: it calls ``smart_resize`` = crop_to_aspect_ratio +
    bilinear resize to (th, tw).
  * UpSampling2D interpolation "nearest" is a repeat; "bilinear" is
    jax.image.resize to (h*sh, w*sw).
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
OUT_PATH = os.path.join(HERE, "keras_vision.json")

rng = np.random.default_rng(15)
L = keras.layers


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def rand(shape, lo=-1.0, hi=1.0):
    """Uniform float32 array in [lo, hi), rounded to 4 decimals."""
    return np.round(rng.uniform(lo, hi, size=shape), 4).astype(np.float32)


def tensor_json(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "dtype": "float32",
            "data": [float(v) for v in a.ravel()]}


def plain_json(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


def jsonify(v):
    """Keras config value -> JSON value (tuples -> lists, numpy -> python)."""
    if isinstance(v, (tuple, list)):
        return [jsonify(e) for e in v]
    if isinstance(v, np.ndarray):
        return jsonify(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: jsonify(e) for k, e in v.items()}
    return v


def default_weight(name, shape):
    """Deterministic, non-trivial value for a weight, by its Keras name."""
    if name == "gamma":
        return np.round(1.0 + rand(shape, -0.5, 0.5), 4).astype(np.float32)
    if name in ("beta", "bias", "moving_mean"):
        return rand(shape, -0.5, 0.5)
    if name == "moving_variance":
        return rand(shape, 0.5, 2.0)
    return rand(shape)  # kernel, depthwise_kernel, pointwise_kernel


def numpy_of(t):
    return np.asarray(t)


cases = []


def add_case(name, class_name, kwargs, x, weight_fn=default_weight,
             training=False, note=None, layer=None, extra=None,
             check=None):
    """Build ``class_name(**kwargs)``, overwrite its weights, run it on ``x``.

    ``config`` = Keras' get_config() restricted to the keys in ``kwargs``.
    ``check(x, weights, out)`` is an optional NumPy cross-check (asserted).
    """
    assert all(c["name"] != name for c in cases), name
    if layer is None:
        layer = getattr(L, class_name)(**kwargs)
    full_cfg = layer.get_config()
    config = {k: jsonify(full_cfg[k]) for k in kwargs}
    if not layer.built:
        layer.build(tuple(x.shape))
    values = [weight_fn(v.name, tuple(v.shape)) for v in layer.weights]
    if values:
        layer.set_weights(values)
    names = [v.name for v in layer.weights]
    assert len(set(names)) == len(names), names
    weights = dict(zip(names, values))
    out = numpy_of(layer(x, training=training))
    assert np.all(np.isfinite(out)), name
    if check is not None:
        check(x, weights, out)
    case = {
        "name": name,
        "class_name": class_name,
        "config": config,
        "weights": {k: plain_json(v) for k, v in weights.items()},
        "weight_order": names,
        "trainable": {v.name: bool(v.trainable) for v in layer.weights},
        "inputs": [tensor_json(x)],
        "input_masks": [None],
        "training": bool(training),
        "output": plain_json(out),
        "output_mask": None,
        "reference": "keras",
    }
    if training:
        case["weights_after"] = {v.name: plain_json(numpy_of(v))
                                 for v in layer.weights}
    if extra:
        case.update(extra)
    if note:
        case["note"] = note
    cases.append(case)
    return layer, out


def expect_value_error(fn):
    try:
        fn()
    except ValueError:
        return True
    return False


# --------------------------------------------------------------------------
# Conv1D   (input [batch, steps, channels], kernel [k, in/groups, filters])
# --------------------------------------------------------------------------
for name, kw, shape in [
    ("conv1d_valid_k3", dict(filters=2, kernel_size=3), (2, 7, 3)),
    ("conv1d_same_k3", dict(filters=2, kernel_size=3, padding="same"),
     (2, 7, 3)),
    ("conv1d_causal_k3_d2", dict(filters=2, kernel_size=3, padding="causal",
                                 dilation_rate=2), (2, 7, 3)),
    ("conv1d_same_k3_s2_even", dict(filters=2, kernel_size=3, strides=2,
                                    padding="same"), (2, 6, 3)),
    ("conv1d_same_k3_s2_odd", dict(filters=2, kernel_size=3, strides=2,
                                   padding="same"), (2, 7, 3)),
    ("conv1d_valid_k3_s2", dict(filters=2, kernel_size=3, strides=2),
     (2, 7, 3)),
    ("conv1d_valid_k3_d2", dict(filters=2, kernel_size=3, dilation_rate=2),
     (2, 7, 3)),
    ("conv1d_groups2", dict(filters=4, kernel_size=3, groups=2), (2, 6, 4)),
    ("conv1d_no_bias", dict(filters=2, kernel_size=3, use_bias=False),
     (2, 6, 3)),
    ("conv1d_relu", dict(filters=3, kernel_size=2, activation="relu"),
     (2, 6, 2)),
]:
    add_case(name, "Conv1D", kw, rand(shape))

assert expect_value_error(
    lambda: L.Conv1D(2, 3, strides=2, dilation_rate=2))

# --------------------------------------------------------------------------
# Conv2D   (kernel [kh, kw, in/groups, filters])
# --------------------------------------------------------------------------
for name, kw, shape in [
    ("conv2d_valid_3x3", dict(filters=2, kernel_size=3), (2, 5, 5, 3)),
    ("conv2d_same_3x3", dict(filters=2, kernel_size=3, padding="same"),
     (2, 5, 5, 2)),
    ("conv2d_same_3x3_s2_even", dict(filters=2, kernel_size=3, strides=2,
                                     padding="same"), (2, 6, 6, 2)),
    ("conv2d_same_3x3_s2_odd", dict(filters=2, kernel_size=3, strides=2,
                                    padding="same"), (2, 7, 7, 2)),
    ("conv2d_valid_3x3_d2", dict(filters=2, kernel_size=3, dilation_rate=2),
     (2, 6, 6, 2)),
    ("conv2d_same_3x3_d2", dict(filters=2, kernel_size=3, dilation_rate=2,
                                padding="same"), (2, 5, 5, 2)),
    ("conv2d_groups2", dict(filters=4, kernel_size=3, groups=2),
     (2, 5, 5, 4)),
    ("conv2d_k2x3_s1x2", dict(filters=2, kernel_size=(2, 3), strides=(1, 2)),
     (2, 5, 6, 2)),
    ("conv2d_no_bias", dict(filters=2, kernel_size=3, use_bias=False),
     (2, 4, 4, 2)),
    ("conv2d_relu", dict(filters=3, kernel_size=3, activation="relu"),
     (2, 5, 5, 2)),
    ("conv2d_1x1", dict(filters=3, kernel_size=1), (2, 3, 3, 4)),
    ("conv2d_channels_first_same_s2", dict(filters=2, kernel_size=3,
                                           strides=2, padding="same",
                                           data_format="channels_first"),
     (2, 3, 5, 6)),
]:
    add_case(name, "Conv2D", kw, rand(shape))

assert expect_value_error(
    lambda: L.Conv2D(2, 3, strides=2, dilation_rate=2))

# --------------------------------------------------------------------------
# DepthwiseConv2D (weight "kernel" [kh, kw, in, dm]) / SeparableConv2D
# --------------------------------------------------------------------------
lay, _ = add_case("depthwise_conv2d_dm1_valid", "DepthwiseConv2D",
                  dict(kernel_size=3), rand((2, 5, 5, 3)),
                  note="Keras weight name is 'kernel' (not "
                       "'depthwise_kernel'), shape [kh, kw, in, dm]")
assert [v.name for v in lay.weights] == ["kernel", "bias"]


add_case("depthwise_conv2d_dm2_same_s2", "DepthwiseConv2D",
         dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2),
         rand((2, 6, 6, 2)),
         note="output channel c*dm + m = input channel c, multiplier m")

lay, _ = add_case("separable_conv2d_same_dm1", "SeparableConv2D",
                  dict(filters=3, kernel_size=3, padding="same"),
                  rand((2, 5, 5, 2)))
assert [v.name for v in lay.weights] == [
    "depthwise_kernel", "pointwise_kernel", "bias"]
add_case("separable_conv2d_valid_dm2_relu", "SeparableConv2D",
         dict(filters=3, kernel_size=3, depth_multiplier=2,
              activation="relu"),
         rand((2, 5, 5, 2)))


# --------------------------------------------------------------------------
# Conv1DTranspose / Conv2DTranspose (kernel [k..., filters, in])
# --------------------------------------------------------------------------
def transpose_geometry(n, k, s, d, padding, op):
    """(output length, left crop of the full scatter result) per Keras/JAX."""
    ke = (k - 1) * d + 1
    if padding == "valid":
        if op is None:
            op = max(ke, s) - ke
        left = ke - 1
        right = ke - 1 + op
    else:
        plen = s + ke - 2 if op is None else ke + ke % 2 - 2 + op
        left = min(plen // 2 + plen % 2, ke - 1)
        right = plen - left
    out_len = (n - 1) * s + 1 + left + right - (ke - 1)
    return out_len, ke - 1 - left


def numpy_conv_transpose(x, kernel, bias, strides, dil, padding, op):
    """Scatter-form transposed conv, channels_last, any rank."""
    sp = x.shape[1:-1]
    nd = len(sp)
    ks = kernel.shape[:nd]
    geo = [transpose_geometry(sp[i], ks[i], strides[i], dil[i], padding,
                              None if op is None else op[i])
           for i in range(nd)]
    full = [max((sp[i] - 1) * strides[i] + (ks[i] - 1) * dil[i] + 1,
                geo[i][0] + geo[i][1]) for i in range(nd)]
    f = kernel.shape[-2]
    y = np.zeros((x.shape[0],) + tuple(full) + (f,), np.float64)
    for idx in np.ndindex(*sp):
        for kidx in np.ndindex(*ks):
            pos = tuple(idx[i] * strides[i] + kidx[i] * dil[i]
                        for i in range(nd))
            # x[b, idx, c] * kernel[kidx, f, c] summed over c
            contrib = x[(slice(None),) + idx + (slice(None),)].astype(
                np.float64) @ kernel[kidx].astype(np.float64).T
            y[(slice(None),) + pos + (slice(None),)] += contrib
    sl = tuple(slice(g[1], g[1] + g[0]) for g in geo)
    y = y[(slice(None),) + sl + (slice(None),)]
    if bias is not None:
        y = y + bias
    return y, [g[1] for g in geo]


def transpose_case(name, cls, kw, shape):
    nd = len(shape) - 2
    x = rand(shape)
    layer = getattr(L, cls)(**kw)
    st = layer.strides
    dl = layer.dilation_rate
    op = layer.output_padding
    crops = {}

    def check(x, w, out):
        ref, crop = numpy_conv_transpose(x, w["kernel"], w.get("bias"), st,
                                         dl, layer.padding, op)
        assert ref.shape == out.shape, (name, ref.shape, out.shape)
        assert np.allclose(ref, out, atol=1e-5), name
        crops["crop"] = crop

    # the note needs the crop, computed before the call from the geometry
    crop = [transpose_geometry(shape[1 + i], layer.kernel_size[i], st[i],
                               dl[i], layer.padding,
                               None if op is None else op[i])[1]
            for i in range(nd)]
    add_case(name, cls, kw, x, layer=layer, check=check,
             note="scatter form (kernel not flipped), left crop %s per "
                  "spatial dim; checked against NumPy" % crop)
    assert crops["crop"] == crop


for name, kw, shape in [
    ("conv2d_transpose_valid_k3_s1", dict(filters=3, kernel_size=3),
     (2, 3, 3, 2)),
    ("conv2d_transpose_valid_k3_s2", dict(filters=3, kernel_size=3,
                                          strides=2), (2, 3, 3, 2)),
    ("conv2d_transpose_same_k3_s2", dict(filters=3, kernel_size=3, strides=2,
                                         padding="same"), (2, 3, 3, 2)),
    ("conv2d_transpose_same_k4_s2", dict(filters=3, kernel_size=4, strides=2,
                                         padding="same"), (2, 3, 3, 2)),
    ("conv2d_transpose_valid_k3_d2", dict(filters=2, kernel_size=3,
                                          dilation_rate=2), (2, 3, 3, 2)),
    ("conv2d_transpose_valid_k2_s3", dict(filters=2, kernel_size=2,
                                          strides=3), (2, 3, 3, 2)),
    ("conv2d_transpose_valid_k3_s2_op1", dict(filters=2, kernel_size=3,
                                              strides=2, output_padding=1),
     (2, 3, 3, 2)),
    ("conv2d_transpose_same_k3_s2_op0", dict(filters=2, kernel_size=3,
                                             strides=2, padding="same",
                                             output_padding=0),
     (2, 3, 3, 2)),
    ("conv2d_transpose_k2x3_s2x1_same_no_bias",
     dict(filters=2, kernel_size=(2, 3), strides=(2, 1), padding="same",
          use_bias=False), (2, 3, 4, 2)),
]:
    transpose_case(name, "Conv2DTranspose", kw, shape)

for name, kw, shape in [
    ("conv1d_transpose_valid_k3_s2", dict(filters=2, kernel_size=3,
                                          strides=2), (2, 4, 3)),
    ("conv1d_transpose_same_k3_s2", dict(filters=2, kernel_size=3, strides=2,
                                         padding="same"), (2, 4, 3)),
    ("conv1d_transpose_valid_k3_s2_op1", dict(filters=2, kernel_size=3,
                                              strides=2, output_padding=1),
     (2, 4, 3)),
    ("conv1d_transpose_same_k4_s3_relu", dict(filters=2, kernel_size=4,
                                              strides=3, padding="same",
                                              activation="relu"),
     (2, 4, 3)),
]:
    if "relu" in name:
        # activation after the affine op: check the pre-activation separately
        x = rand(shape)
        layer = L.Conv1DTranspose(**kw)
        crop = [transpose_geometry(shape[1], 4, 3, 1, "same", None)[1]]

        def check(x, w, out, layer=layer):
            ref, _ = numpy_conv_transpose(x, w["kernel"], w["bias"], (3,),
                                          (1,), "same", None)
            assert np.allclose(np.maximum(ref, 0), out, atol=1e-5)

        add_case(name, "Conv1DTranspose", kw, x, layer=layer, check=check,
                 note="scatter form (kernel not flipped), left crop %s; "
                      "checked against NumPy" % crop)
    else:
        transpose_case(name, "Conv1DTranspose", kw, shape)

assert expect_value_error(
    lambda: L.Conv2DTranspose(2, 3, strides=2, output_padding=2))
assert expect_value_error(
    lambda: L.Conv2DTranspose(2, 3, strides=2, dilation_rate=2))


# --------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------
def same_pads(n, k, s):
    out = -(-n // s)
    tot = max((out - 1) * s + k - n, 0)
    return out, tot // 2


def numpy_pool(x, pool, strides, padding, mode):
    """Reference pooling, channels_last, padded cells excluded."""
    sp = x.shape[1:-1]
    nd = len(sp)
    outs, starts = [], []
    for i in range(nd):
        if padding == "valid":
            outs.append((sp[i] - pool[i]) // strides[i] + 1)
            starts.append(0)
        else:
            o, lp = same_pads(sp[i], pool[i], strides[i])
            outs.append(o)
            starts.append(-lp)
    y = np.zeros((x.shape[0],) + tuple(outs) + (x.shape[-1],), np.float64)
    for o in np.ndindex(*outs):
        sl = []
        for i in range(nd):
            a = starts[i] + o[i] * strides[i]
            sl.append(slice(max(a, 0), min(a + pool[i], sp[i])))
        win = x[(slice(None),) + tuple(sl) + (slice(None),)].astype(
            np.float64)
        ax = tuple(range(1, nd + 1))
        y[(slice(None),) + o + (slice(None),)] = (
            win.max(axis=ax) if mode == "max" else win.mean(axis=ax))
    return y


for cls, mode, nd in [("MaxPooling1D", "max", 1), ("AveragePooling1D", "avg", 1),
                      ("MaxPooling2D", "max", 2),
                      ("AveragePooling2D", "avg", 2)]:
    base = cls.replace("Pooling", "_pool").lower()
    variants = [
        ("valid_p2", dict(pool_size=2), (2, 6, 3) if nd == 1 else (2, 5, 5, 2)),
        ("same_p2_odd", dict(pool_size=2, padding="same"),
         (2, 7, 3) if nd == 1 else (2, 5, 5, 2)),
        ("valid_p3_s2", dict(pool_size=3, strides=2),
         (2, 7, 3) if nd == 1 else (2, 7, 7, 2)),
        ("same_p3_s2_even", dict(pool_size=3, strides=2, padding="same"),
         (2, 6, 3) if nd == 1 else (2, 6, 6, 2)),
        ("same_p3_s1", dict(pool_size=3, strides=1, padding="same"),
         (2, 5, 3) if nd == 1 else (2, 4, 5, 2)),
    ]
    if nd == 2:
        variants.append(("valid_p2x3_s1x2", dict(pool_size=(2, 3),
                                                 strides=(1, 2)),
                         (2, 4, 7, 2)))
        variants.append(("channels_first_valid_p2",
                         dict(pool_size=2, data_format="channels_first"),
                         (2, 2, 5, 4)))
    for suffix, kw, shape in variants:
        layer = getattr(L, cls)(**kw)
        pool, st = layer.pool_size, layer.strides

        def check(x, w, out, pool=pool, st=st, kw=kw, mode=mode):
            if kw.get("data_format") == "channels_first":
                xt = np.moveaxis(x, 1, -1)
                ref = np.moveaxis(numpy_pool(xt, pool, st, layer.padding,
                                             mode), -1, 1)
            else:
                ref = numpy_pool(x, pool, st, layer.padding, mode)
            assert ref.shape == out.shape and np.allclose(ref, out,
                                                          atol=1e-6), suffix

        note = None
        if mode == "avg" and "same" in suffix:
            note = ("'same' padding: padded cells are excluded from the mean "
                    "(divides by the count of real cells); checked vs NumPy")
        add_case("%s_%s" % (base, suffix), cls, kw, rand(shape), layer=layer,
                 check=check, note=note)

# --------------------------------------------------------------------------
# Global pooling 2D
# --------------------------------------------------------------------------
for cls in ["GlobalAveragePooling2D", "GlobalMaxPooling2D"]:
    base = "global_avg_pool2d" if "Average" in cls else "global_max_pool2d"
    add_case(base, cls, {}, rand((2, 3, 4, 3)))
    add_case(base + "_keepdims", cls, dict(keepdims=True), rand((2, 3, 4, 3)))

# --------------------------------------------------------------------------
# Padding / upsampling / cropping
# --------------------------------------------------------------------------
add_case("zero_padding1d_2", "ZeroPadding1D", dict(padding=2),
         rand((2, 4, 3)))
add_case("zero_padding1d_1_2", "ZeroPadding1D", dict(padding=(1, 2)),
         rand((2, 4, 3)))
add_case("zero_padding2d_1", "ZeroPadding2D", dict(padding=1),
         rand((2, 3, 4, 2)))
add_case("zero_padding2d_12_03", "ZeroPadding2D",
         dict(padding=((1, 2), (0, 3))), rand((2, 3, 3, 2)))
add_case("upsampling1d_2", "UpSampling1D", dict(size=2), rand((2, 4, 3)))
add_case("upsampling2d_2x3_nearest", "UpSampling2D", dict(size=(2, 3)),
         rand((2, 3, 3, 2)))
add_case("upsampling2d_2_bilinear", "UpSampling2D",
         dict(size=2, interpolation="bilinear"), rand((2, 3, 4, 2)),
         note="jax.image.resize bilinear (half-pixel centres, edge clamp)")
add_case("cropping1d_1_2", "Cropping1D", dict(cropping=(1, 2)),
         rand((2, 6, 3)))
add_case("cropping2d_10_21", "Cropping2D", dict(cropping=((1, 0), (2, 1))),
         rand((2, 5, 6, 2)))


# --------------------------------------------------------------------------
# BatchNormalization
# --------------------------------------------------------------------------
def bn_input(shape):
    # offset + scale so normalisation does real work
    return np.round(rand(shape, -2.0, 2.0) + np.float32(0.7), 4).astype(
        np.float32)


lay, _ = add_case("batch_norm_inference_rank4", "BatchNormalization", {},
                  bn_input((2, 3, 3, 4)))
assert [v.name for v in lay.weights] == ["gamma", "beta", "moving_mean",
                                         "moving_variance"]
assert [v.trainable for v in lay.weights] == [True, True, False, False]

for name, shape in [("batch_norm_training_rank4", (2, 3, 3, 4)),
                    ("batch_norm_training_rank2", (6, 4))]:
    x = bn_input(shape)

    def check(x, w, out):
        ax = tuple(range(x.ndim - 1))
        m = x.astype(np.float64).mean(axis=ax)
        v = x.astype(np.float64).var(axis=ax)
        ref = (x - m) / np.sqrt(v + 1e-3) * w["gamma"] + w["beta"]
        assert np.allclose(ref, out, atol=1e-5)

    lay, _ = add_case(name, "BatchNormalization", {}, x, training=True,
                      check=check,
                      note="training=True: batch mean / biased batch "
                           "variance; weights_after holds moving stats "
                           "updated with momentum 0.99")
    xm = x.astype(np.float64)
    ax = tuple(range(x.ndim - 1))
    mm = np.asarray(cases[-1]["weights"]["moving_mean"]["data"])
    mv = np.asarray(cases[-1]["weights"]["moving_variance"]["data"])
    assert np.allclose(np.asarray(lay.moving_mean),
                       0.99 * mm + 0.01 * xm.mean(axis=ax), atol=1e-6)
    assert np.allclose(np.asarray(lay.moving_variance),
                       0.99 * mv + 0.01 * xm.var(axis=ax), atol=1e-6)

add_case("batch_norm_axis1_rank3", "BatchNormalization", dict(axis=1),
         bn_input((2, 3, 4)), note="normalises over axis 1 (size 3)")
lay, _ = add_case("batch_norm_no_center", "BatchNormalization",
                  dict(center=False), bn_input((2, 2, 2, 3)))
assert [v.name for v in lay.weights] == ["gamma", "moving_mean",
                                         "moving_variance"]
lay, _ = add_case("batch_norm_no_scale", "BatchNormalization",
                  dict(scale=False), bn_input((2, 2, 2, 3)))
assert [v.name for v in lay.weights] == ["beta", "moving_mean",
                                         "moving_variance"]
add_case("batch_norm_epsilon_0.01", "BatchNormalization",
         dict(epsilon=0.01), bn_input((4, 3)))

# --------------------------------------------------------------------------
# GroupNormalization
# --------------------------------------------------------------------------
for name, groups in [("group_norm_groups2", 2), ("group_norm_instance", -1),
                     ("group_norm_groups1", 1)]:
    x = bn_input((2, 3, 3, 4))

    def check(x, w, out, groups=groups):
        g = 4 if groups == -1 else groups
        xr = x.astype(np.float64).reshape(2, 3, 3, g, 4 // g)
        m = xr.mean(axis=(1, 2, 4), keepdims=True)
        v = xr.var(axis=(1, 2, 4), keepdims=True)
        ref = ((xr - m) / np.sqrt(v + 1e-3)).reshape(x.shape)
        ref = ref * w["gamma"] + w["beta"]
        assert np.allclose(ref, out, atol=1e-5)

    lay, _ = add_case(name, "GroupNormalization", dict(groups=groups), x,
                      check=check,
                      note="groups=-1: one group per channel" if groups == -1
                      else None)
    assert [v.name for v in lay.weights] == ["gamma", "beta"]

# --------------------------------------------------------------------------
# Rescaling / Normalization
# --------------------------------------------------------------------------
pix = np.round(rng.uniform(0, 255, size=(2, 3, 3, 2))).astype(np.float32)
add_case("rescaling_1_255", "Rescaling", dict(scale=1.0 / 255), pix)
pix = np.round(rng.uniform(0, 255, size=(2, 3, 3, 2))).astype(np.float32)
add_case("rescaling_1_127.5_offset_-1", "Rescaling",
         dict(scale=1.0 / 127.5, offset=-1.0), pix)

lay, _ = add_case("normalization_explicit", "Normalization",
                  dict(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0]),
                  rand((2, 4, 3), -3.0, 3.0),
                  note="mean/variance as constructor args: the layer has NO "
                       "weights; y = (x - mean) / max(sqrt(var), 1e-7)")
assert lay.weights == []

adapt_data = rand((8, 3), -2.0, 3.0)
norm = L.Normalization()
norm.adapt(adapt_data)
assert [v.name for v in norm.weights] == ["mean", "variance", "count"]
adapted = {v.name: np.asarray(v) for v in norm.weights}
assert np.allclose(adapted["mean"], adapt_data.astype(np.float64).mean(0),
                   atol=1e-6)
assert np.allclose(adapted["variance"], adapt_data.astype(np.float64).var(0),
                   atol=1e-5)
# "count" is an int32 scalar kept only for loading old saved models: adapt()
# never updates it (it stays 0), and a second adapt() replaces the state.
assert adapted["count"].dtype == np.int32 and int(adapted["count"]) == 0
add_case("normalization_adapted", "Normalization", {},
         rand((2, 3), -2.0, 3.0), layer=norm,
         weight_fn=lambda n, s: adapted[n],
         extra={"adapt_data": tensor_json(adapt_data),
                "weight_dtypes": {"mean": "float32", "variance": "float32",
                                  "count": "int32"}},
         note="weights = state after adapt(adapt_data): mean, variance "
              "(population, 1/N) and an int32 scalar count that Keras never "
              "updates (always 0; back-compat only). All non-trainable.")

# --------------------------------------------------------------------------
# Resizing / CenterCrop
# --------------------------------------------------------------------------
add_case("resizing_bilinear_5x5_to_3x4", "Resizing", dict(height=3, width=4),
         rand((2, 5, 5, 2), 0.0, 1.0),
         note="defaults: interpolation bilinear, antialias False")
add_case("resizing_bilinear_3x3_to_6x6", "Resizing", dict(height=6, width=6),
         rand((2, 3, 3, 2), 0.0, 1.0))
add_case("resizing_nearest_4x5_to_6x3", "Resizing",
         dict(height=6, width=3, interpolation="nearest"),
         rand((2, 4, 5, 2), 0.0, 1.0),
         note="nearest: source index floor((i + 0.5) * in / out)")
add_case("resizing_bilinear_crop_to_aspect_5x7_to_3x3", "Resizing",
         dict(height=3, width=3, crop_to_aspect_ratio=True),
         rand((2, 5, 7, 2), 0.0, 1.0),
         note="centre-crops 5x7 to 5x5 (cols 1..5) then resizes to 3x3")
add_case("center_crop_7x6_to_3x4", "CenterCrop", dict(height=3, width=4),
         rand((2, 7, 6, 2)), note="rows (7-3)//2=2.., cols (6-4)//2=1..")
add_case("center_crop_larger_3x4_to_5x6", "CenterCrop",
         dict(height=5, width=6), rand((2, 3, 4, 2)),
         note="target larger than input: Keras does NOT pad; it uses "
              "smart_resize (crop to aspect ratio 3x4 -> 3x3 at col 0, "
              "then bilinear resize to 5x6)")
add_case("center_crop_mixed_6x3_to_4x5", "CenterCrop",
         dict(height=4, width=5), rand((2, 6, 3, 2)),
         note="width larger than input: smart_resize (crop to 2x3 at row 2, "
              "then bilinear resize to 4x5)")

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
