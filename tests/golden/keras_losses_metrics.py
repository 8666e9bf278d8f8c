"""Golden reference values for strata's losses and metrics, produced by Keras 3.

What it produces
----------------
``tests/golden/keras_losses_metrics.json`` (next to this script): loss cases
and metric cases, each with fixed inputs and the values Keras 3 computes on
the JAX CPU backend.  ``tests/golden_losses.rs`` replays every case on every
strata backend.

How to run (from the repository root)
-------------------------------------
    KERAS_BACKEND=jax /work/keras-venv/bin/python tests/golden/keras_losses_metrics.py

JSON format
-----------
    {"keras_version": str, "jax_version": str, "losses": [case], "metrics": [case]}

tensor: {"shape": [...], "dtype": "float32" | "int64", "data": [row-major]}

loss case:
    {"name":          unique descriptive name,
     "config":        the Keras loss' get_config() as {"class_name", "config"}
                      (Huber's delta added: Keras 3 leaves it out),
     "y_true", "y_pred": tensors,
     "sample_weight": tensor | null,
     "mask":          tensor | null   (set on y_pred with set_keras_mask),
     "per_sample":    tensor: the loss with reduction=None, no weight, no mask,
     "value":         float: loss(y_true, y_pred [masked], sample_weight),
     "reference":     how the value was obtained (see below)}

metric case:
    {"name", "metric": strata's metric name, "args": {builder argument: value},
     "batches": [{"y_true", "y_pred", "sample_weight", "mask"}, ...],
     "results": [float after each batch (update_state, then result())],
     "reference"}

"reference" is "keras" when Keras computed the value from exactly the
case's inputs.  Where Keras 3 cannot take them, the case says what was fed to
Keras instead, and strata is expected to agree with that:
  * "keras, [batch] weight broadcast to [batch, T]": Keras 3 aligns a
    sample weight with the losses from the right, so a [batch] weight for a
    [batch, T] loss raises (or silently mis-broadcasts when batch == T).
    strata aligns it with the batch axis; Keras got the weight repeated
    over T.
  * "keras, mask passed as sample_weight": Precision, Recall, AUC and
    RootMeanSquaredError ignore masks in Keras 3 (only MeanMetricWrapper
    reads them).  strata folds the mask into the weights for every metric;
    Keras got sample_weight = weight * mask.

Determinism: inputs come from ``np.random.default_rng(0)`` or are written
out by hand, rounded to 4 decimals and cast to float32; every number is
written with ``float(x)``, i.e. the exact float32 value.
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src import backend  # noqa: E402

rng = np.random.default_rng(0)

KERAS = "keras"
BATCH_WEIGHT = "keras, [batch] weight broadcast to [batch, T]"
MASK_AS_WEIGHT = "keras, mask passed as sample_weight"


def f32(a):
    return np.round(np.asarray(a, dtype=np.float64), 4).astype(np.float32)


def uniform(shape, lo=0.0, hi=1.0):
    return f32(rng.uniform(lo, hi, size=shape))


def normal(shape, scale=1.0):
    return f32(rng.normal(0.0, scale, size=shape))


def probs(shape):
    x = rng.uniform(0.05, 1.0, size=shape)
    return f32(x / x.sum(-1, keepdims=True))


def ids(shape, classes):
    return rng.integers(0, classes, size=shape).astype(np.int64)


def one_hot(labels, classes):
    return np.eye(classes, dtype=np.float32)[labels]


def bits(shape):
    return rng.integers(0, 2, size=shape).astype(np.float32)


def tensor(a):
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return {"shape": list(a.shape), "dtype": "int64", "data": [int(v) for v in a.reshape(-1)]}
    a = a.astype(np.float32)
    return {"shape": list(a.shape), "dtype": "float32", "data": [float(v) for v in a.reshape(-1)]}


def masked(y_pred, mask):
    y = keras.ops.convert_to_tensor(y_pred)
    if mask is not None:
        backend.set_keras_mask(y, keras.ops.convert_to_tensor(np.asarray(mask) != 0))
    return y


# ------------------------------------------------------------------ losses

LOSSES = []


def loss_case(name, loss, y_true, y_pred, sample_weight=None, mask=None, keras_weight=None, reference=KERAS):
    """`keras_weight` (if given) is what Keras gets instead of `sample_weight`."""
    assert name not in {c["name"] for c in LOSSES}, name
    config = {"class_name": type(loss).__name__, "config": loss.get_config()}
    if isinstance(loss, keras.losses.Huber):
        config["config"]["delta"] = float(loss._fn_kwargs["delta"])
    per_sample_loss = type(loss).from_config({**loss.get_config(), "reduction": None})
    if isinstance(loss, keras.losses.Huber):
        per_sample_loss = keras.losses.Huber(delta=loss._fn_kwargs["delta"], reduction=None)
    per_sample = np.asarray(per_sample_loss(y_true, y_pred))
    kw = sample_weight if keras_weight is None else keras_weight
    value = float(np.asarray(loss(y_true, masked(y_pred, mask), sample_weight=kw)))
    assert np.all(np.isfinite(per_sample)) and np.isfinite(value), name
    LOSSES.append(
        {
            "name": name,
            "config": config,
            "y_true": tensor(y_true),
            "y_pred": tensor(y_pred),
            "sample_weight": tensor(sample_weight),
            "mask": tensor(mask),
            "per_sample": tensor(per_sample),
            "value": value,
            "reference": reference,
        }
    )


B, C = 6, 4
SB, T, SC = 3, 4, 5  # sequence outputs [SB, T, SC]
w6 = f32([0.5, 1.0, 2.0, 0.0, 1.5, 0.25])
m6 = f32([1, 1, 0, 1, 0, 1])
seq_mask = f32([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
seq_w = uniform((SB, T), 0.2, 2.0)
seq_bw = f32([0.5, 2.0, 1.0])

# Regression losses.
for cls, short in [(keras.losses.MeanSquaredError, "mse"), (keras.losses.MeanAbsoluteError, "mae")]:
    yt, yp = normal((B, 3)), normal((B, 3))
    loss_case(f"{short}_basic", cls(), yt, yp)
    loss_case(f"{short}_sample_weight", cls(), yt, yp, sample_weight=w6)
    loss_case(f"{short}_mask", cls(), yt, yp, mask=m6)
    loss_case(f"{short}_weight_and_mask", cls(), yt, yp, sample_weight=w6, mask=m6)
    loss_case(f"{short}_target_rank_1_output_rank_2", cls(), normal((B,)), normal((B, 1)))
    loss_case(f"{short}_target_broadcast_over_features", cls(), normal((B, 1)), normal((B, 3)))
    loss_case(f"{short}_per_sample_weight_2d", cls(), normal((B, 1)), normal((B, 1)), sample_weight=w6.reshape(B, 1))
    ys, ps = normal((SB, T, 2)), normal((SB, T, 2))
    loss_case(f"{short}_sequence_mask", cls(), ys, ps, mask=seq_mask)
    loss_case(f"{short}_sequence_weight_and_mask", cls(), ys, ps, sample_weight=seq_w, mask=seq_mask)
    loss_case(
        f"{short}_sequence_batch_weight_and_mask",
        cls(),
        ys,
        ps,
        sample_weight=seq_bw,
        mask=seq_mask,
        keras_weight=np.broadcast_to(seq_bw[:, None], (SB, T)).copy(),
        reference=BATCH_WEIGHT,
    )

# Huber: errors on both sides of delta.
yt_h = normal((B, 3), 2.0)
yp_h = normal((B, 3), 2.0)
for delta in [1.0, 0.3, 2.5]:
    loss_case(f"huber_delta_{delta}", keras.losses.Huber(delta=delta), yt_h, yp_h)
loss_case("huber_delta_1.0_weight_and_mask", keras.losses.Huber(), yt_h, yp_h, sample_weight=w6, mask=m6)
loss_case(
    "huber_delta_0.5_sequence_mask", keras.losses.Huber(delta=0.5), normal((SB, T, 2), 2.0), normal((SB, T, 2), 2.0), mask=seq_mask
)

# Binary cross-entropy.
yb1, yb3 = bits((B, 1)), bits((B, 3))
for logits in [True, False]:
    tag = "logits" if logits else "probs"
    bce = keras.losses.BinaryCrossentropy(from_logits=logits)
    p1 = normal((B, 1), 2.0) if logits else uniform((B, 1), 0.02, 0.98)
    p3 = normal((B, 3), 2.0) if logits else uniform((B, 3), 0.02, 0.98)
    loss_case(f"bce_{tag}_single_unit", bce, yb1, p1)
    loss_case(f"bce_{tag}_multi_label", bce, yb3, p3)
    loss_case(f"bce_{tag}_target_rank_1", bce, yb1.reshape(B), p1)
    loss_case(f"bce_{tag}_sample_weight", bce, yb3, p3, sample_weight=w6)
    loss_case(f"bce_{tag}_mask", bce, yb3, p3, mask=m6)
    loss_case(f"bce_{tag}_weight_and_mask", bce, yb1, p1, sample_weight=w6, mask=m6)
    seq_t = bits((SB, T, 1))
    seq_p = normal((SB, T, 1), 2.0) if logits else uniform((SB, T, 1), 0.02, 0.98)
    loss_case(f"bce_{tag}_sequence_mask", bce, seq_t, seq_p, mask=seq_mask)
# Probabilities of exactly 0 and 1 (right and wrong): clipped to [eps, 1 - eps].
loss_case(
    "bce_probs_exact_0_and_1",
    keras.losses.BinaryCrossentropy(),
    f32([[0, 1, 0, 1], [1, 0, 1, 1]]),
    f32([[0, 1, 1, 0], [1, 0, 0.5, 1]]),
)
# Large logits: must stay finite and exact.
loss_case(
    "bce_logits_large",
    keras.losses.BinaryCrossentropy(from_logits=True),
    f32([[0, 1, 0, 1], [1, 0, 1, 0]]),
    f32([[-100, 100, 100, -100], [30, -30, -35, 40]]),
)

# Categorical cross-entropy.
labels6 = ids((B,), C)
oh6 = one_hot(labels6, C)
seq_labels = ids((SB, T), SC)
seq_oh = one_hot(seq_labels, SC)
for logits in [True, False]:
    tag = "logits" if logits else "probs"
    cce = keras.losses.CategoricalCrossentropy(from_logits=logits)
    p = normal((B, C), 2.0) if logits else probs((B, C))
    loss_case(f"cce_{tag}_basic", cce, oh6, p)
    loss_case(f"cce_{tag}_soft_targets", cce, probs((B, C)), p)
    loss_case(f"cce_{tag}_sample_weight", cce, oh6, p, sample_weight=w6)
    loss_case(f"cce_{tag}_mask", cce, oh6, p, mask=m6)
    loss_case(f"cce_{tag}_weight_and_mask", cce, oh6, p, sample_weight=w6, mask=m6)
    sp = normal((SB, T, SC), 2.0) if logits else probs((SB, T, SC))
    loss_case(f"cce_{tag}_sequence_mask", cce, seq_oh, sp, mask=seq_mask)
    loss_case(f"cce_{tag}_sequence_weight_and_mask", cce, seq_oh, sp, sample_weight=seq_w, mask=seq_mask)
loss_case(
    "cce_probs_exact_0_and_1",
    keras.losses.CategoricalCrossentropy(),
    f32([[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
    f32([[0, 1, 0], [0, 1, 0], [0.5, 0.5, 0]]),
)
loss_case(
    "cce_probs_unnormalised",
    keras.losses.CategoricalCrossentropy(),
    oh6,
    uniform((B, C), 0.1, 3.0),
)
loss_case(
    "cce_logits_large",
    keras.losses.CategoricalCrossentropy(from_logits=True),
    f32([[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
    f32([[100, -100, 0], [-50, 60, 50], [1000, 0, -1000]]),
)

# Sparse categorical cross-entropy.
for logits in [True, False]:
    tag = "logits" if logits else "probs"
    scce = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    p = normal((B, C), 2.0) if logits else probs((B, C))
    loss_case(f"scce_{tag}_ids_rank_1", scce, labels6, p)
    loss_case(f"scce_{tag}_ids_rank_2", scce, labels6.reshape(B, 1), p)
    loss_case(f"scce_{tag}_float_ids", scce, labels6.astype(np.float32), p)
    loss_case(f"scce_{tag}_sample_weight", scce, labels6, p, sample_weight=w6)
    loss_case(f"scce_{tag}_mask", scce, labels6, p, mask=m6)
    loss_case(f"scce_{tag}_weight_and_mask", scce, labels6, p, sample_weight=w6, mask=m6)
    sp = normal((SB, T, SC), 2.0) if logits else probs((SB, T, SC))
    loss_case(f"scce_{tag}_sequence_mask", scce, seq_labels, sp, mask=seq_mask)
    loss_case(f"scce_{tag}_sequence_weight_and_mask", scce, seq_labels, sp, sample_weight=seq_w, mask=seq_mask)
    loss_case(
        f"scce_{tag}_sequence_batch_weight_and_mask",
        scce,
        seq_labels,
        sp,
        sample_weight=seq_bw,
        mask=seq_mask,
        keras_weight=np.broadcast_to(seq_bw[:, None], (SB, T)).copy(),
        reference=BATCH_WEIGHT,
    )
loss_case(
    "scce_probs_exact_0_and_1",
    keras.losses.SparseCategoricalCrossentropy(),
    np.array([0, 1, 2], dtype=np.int64),
    f32([[0, 1, 0], [0, 1, 0], [0.5, 0.5, 0]]),
)
loss_case(
    "scce_logits_large",
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    np.array([0, 1, 2], dtype=np.int64),
    f32([[100, -100, 0], [-50, 60, 50], [1000, 0, -1000]]),
)
loss_case(
    "scce_logits_everything_masked",
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    labels6,
    normal((B, C)),
    mask=np.zeros(B, np.float32),
)

# ----------------------------------------------------------------- metrics

METRICS = []

KERAS_METRICS = {
    "binary_accuracy": lambda a: keras.metrics.BinaryAccuracy(**a),
    "categorical_accuracy": lambda a: keras.metrics.CategoricalAccuracy(**a),
    "sparse_categorical_accuracy": lambda a: keras.metrics.SparseCategoricalAccuracy(**a),
    "top_k_categorical_accuracy": lambda a: keras.metrics.TopKCategoricalAccuracy(**a),
    "sparse_top_k_categorical_accuracy": lambda a: keras.metrics.SparseTopKCategoricalAccuracy(**a),
    "precision": lambda a: keras.metrics.Precision(**a),
    "recall": lambda a: keras.metrics.Recall(**a),
    "auc": lambda a: keras.metrics.AUC(**a),
    "mean_absolute_error": lambda a: keras.metrics.MeanAbsoluteError(**a),
    "mean_squared_error": lambda a: keras.metrics.MeanSquaredError(**a),
    "root_mean_squared_error": lambda a: keras.metrics.RootMeanSquaredError(**a),
}
MASK_BLIND = {"precision", "recall", "auc", "root_mean_squared_error"}


def metric_case(name, metric, args, batches, batch_weight=False):
    """batches: list of (y_true, y_pred, sample_weight, mask)."""
    assert name not in {c["name"] for c in METRICS}, name
    m = KERAS_METRICS[metric](dict(args))
    notes = []
    results = []
    for y_true, y_pred, weight, mask in batches:
        kw, kmask = weight, mask
        if batch_weight and weight is not None:
            kw = np.broadcast_to(weight.reshape(weight.shape + (1,) * (mask.ndim - weight.ndim)), mask.shape).copy()
            notes.append(BATCH_WEIGHT)
        if metric in MASK_BLIND and mask is not None:
            # Keras 3 ignores the mask here: give it as a weight.
            base = np.ones(mask.shape, np.float32) if kw is None else kw
            kw = (base.reshape(base.shape + (1,) * (mask.ndim - base.ndim)) * mask).astype(np.float32)
            kmask = None
            notes.append(MASK_AS_WEIGHT)
        m.update_state(y_true, masked(y_pred, kmask), sample_weight=kw)
        results.append(float(np.asarray(m.result())))
    notes = sorted(set(notes))
    reference = "; ".join([notes[0]] + [n[len("keras, "):] for n in notes[1:]]) if notes else KERAS
    assert all(np.isfinite(results)), name
    METRICS.append(
        {
            "name": name,
            "metric": metric,
            "args": args,
            "batches": [
                {"y_true": tensor(t), "y_pred": tensor(p), "sample_weight": tensor(w), "mask": tensor(k)}
                for t, p, w, k in batches
            ],
            "results": results,
            "reference": reference,
        }
    )


def two(make, weights=(None, None), masks=(None, None)):
    return [make(i) + (weights[i], masks[i]) for i in range(2)]


def bin_batch(i, n=B):
    return (bits((n, 1)), uniform((n, 1)))


wA, wB = f32([1, 0.5, 2, 0, 1, 3]), f32([0.25, 1, 1, 2, 0, 1])
mA, mB = f32([1, 1, 0, 1, 1, 0]), f32([0, 1, 1, 1, 1, 1])

# Binary accuracy.
metric_case("binary_accuracy_default", "binary_accuracy", {}, two(bin_batch))
metric_case("binary_accuracy_threshold_0.7", "binary_accuracy", {"threshold": 0.7}, two(bin_batch))
metric_case("binary_accuracy_sample_weight", "binary_accuracy", {}, two(bin_batch, weights=(wA, wB)))
metric_case("binary_accuracy_mask", "binary_accuracy", {}, two(bin_batch, masks=(mA, mB)))
metric_case("binary_accuracy_weight_and_mask", "binary_accuracy", {}, two(bin_batch, (wA, wB), (mA, mB)))
metric_case("binary_accuracy_target_rank_1", "binary_accuracy", {}, two(lambda i: (bits((B,)), uniform((B, 1)))))
metric_case("binary_accuracy_multi_label", "binary_accuracy", {}, two(lambda i: (bits((B, 3)), uniform((B, 3))), (wA, wB)))


def cat_batch(i):
    return (one_hot(ids((B,), C), C), probs((B, C)))


def sparse_batch(i):
    return (ids((B,), C), probs((B, C)))


def seq_cat_batch(i):
    return (one_hot(ids((SB, T), SC), SC), probs((SB, T, SC)))


def seq_sparse_batch(i):
    return (ids((SB, T), SC), probs((SB, T, SC)))


smA = seq_mask
smB = f32([[1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]])
sbwA, sbwB = f32([1, 2, 0.5]), f32([0.5, 1, 3])

metric_case("categorical_accuracy_default", "categorical_accuracy", {}, two(cat_batch))
metric_case("categorical_accuracy_sample_weight", "categorical_accuracy", {}, two(cat_batch, (wA, wB)))
metric_case("categorical_accuracy_weight_and_mask", "categorical_accuracy", {}, two(cat_batch, (wA, wB), (mA, mB)))
metric_case("categorical_accuracy_sequence_mask", "categorical_accuracy", {}, two(seq_cat_batch, masks=(smA, smB)))
metric_case(
    "categorical_accuracy_sequence_batch_weight_and_mask",
    "categorical_accuracy",
    {},
    two(seq_cat_batch, (sbwA, sbwB), (smA, smB)),
    batch_weight=True,
)

metric_case("sparse_categorical_accuracy_default", "sparse_categorical_accuracy", {}, two(sparse_batch))
metric_case(
    "sparse_categorical_accuracy_ids_rank_2",
    "sparse_categorical_accuracy",
    {},
    two(lambda i: (ids((B, 1), C), probs((B, C))), (wA, wB)),
)
metric_case(
    "sparse_categorical_accuracy_float_ids",
    "sparse_categorical_accuracy",
    {},
    two(lambda i: (ids((B,), C).astype(np.float32), probs((B, C)))),
)
metric_case("sparse_categorical_accuracy_weight_and_mask", "sparse_categorical_accuracy", {}, two(sparse_batch, (wA, wB), (mA, mB)))
metric_case("sparse_categorical_accuracy_sequence_mask", "sparse_categorical_accuracy", {}, two(seq_sparse_batch, masks=(smA, smB)))
metric_case(
    "sparse_categorical_accuracy_sequence_weight_and_mask",
    "sparse_categorical_accuracy",
    {},
    two(seq_sparse_batch, (uniform((SB, T), 0.2, 2), uniform((SB, T), 0.2, 2)), (smA, smB)),
)
metric_case(
    "sparse_categorical_accuracy_sequence_batch_weight_and_mask",
    "sparse_categorical_accuracy",
    {},
    two(seq_sparse_batch, (sbwA, sbwB), (smA, smB)),
    batch_weight=True,
)

# Top-k with k=2; the second batch has ties at the label's score (ties count as hits).
tie_p = f32([[0.3, 0.3, 0.3, 0.1], [0.1, 0.4, 0.4, 0.1], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
tie_ids = np.array([2, 0, 3, 2, 1, 2], dtype=np.int64)
metric_case("top_k_categorical_accuracy_k2", "top_k_categorical_accuracy", {"k": 2}, two(cat_batch))
metric_case(
    "top_k_categorical_accuracy_k2_ties_and_weights",
    "top_k_categorical_accuracy",
    {"k": 2},
    [(one_hot(tie_ids, C), tie_p, wA, None), cat_batch(1) + (wB, mB)],
)
metric_case("top_k_categorical_accuracy_k2_sequence_mask", "top_k_categorical_accuracy", {"k": 2}, two(seq_cat_batch, masks=(smA, smB)))
metric_case("sparse_top_k_categorical_accuracy_k2", "sparse_top_k_categorical_accuracy", {"k": 2}, two(sparse_batch))
metric_case(
    "sparse_top_k_categorical_accuracy_k2_ties_and_weights",
    "sparse_top_k_categorical_accuracy",
    {"k": 2},
    [(tie_ids, tie_p, wA, None), (ids((B, 1), C), probs((B, C)), wB, mB)],
)
metric_case(
    "sparse_top_k_categorical_accuracy_k2_sequence_mask",
    "sparse_top_k_categorical_accuracy",
    {"k": 2},
    two(seq_sparse_batch, masks=(smA, smB)),
)

# Precision / recall at several thresholds; multi-label and masked cases.
N = 12
wN = (uniform((N,), 0, 2), uniform((N,), 0, 2))
mN = (bits((N,)), bits((N,)))
for metric in ["precision", "recall"]:
    for thr in [None, 0.3, 0.7, 0.0]:
        args = {} if thr is None else {"thresholds": thr}
        tag = "default" if thr is None else f"threshold_{thr}"
        metric_case(f"{metric}_{tag}", metric, args, two(lambda i: (bits((N, 1)), uniform((N, 1)))))
    metric_case(f"{metric}_sample_weight", metric, {}, two(lambda i: (bits((N, 1)), uniform((N, 1))), wN))
    metric_case(f"{metric}_weight_and_mask", metric, {"thresholds": 0.4}, two(lambda i: (bits((N, 1)), uniform((N, 1))), wN, mN))
    metric_case(f"{metric}_multi_label", metric, {}, two(lambda i: (bits((B, 3)), uniform((B, 3))), (wA, wB)))
    metric_case(f"{metric}_target_rank_1", metric, {}, two(lambda i: (bits((N,)), uniform((N, 1)))))
    metric_case(
        f"{metric}_sequence_mask",
        metric,
        {},
        two(lambda i: (bits((SB, T, 1)), uniform((SB, T, 1))), masks=(smA, smB)),
    )

# AUC.
NA = 40


def auc_batch(i):
    y = bits((NA, 1))
    # Informative but noisy scores.
    return (y, f32(np.clip(0.35 * y + rng.uniform(0, 0.65, size=(NA, 1)), 0, 1)))


def auc_logit_batch(i):
    y = bits((NA, 1))
    return (y, f32(2.0 * y - 1.0 + rng.normal(0, 1.5, size=(NA, 1))))


wNA = (uniform((NA,), 0, 2), uniform((NA,), 0, 2))
mNA = (bits((NA,)), bits((NA,)))
metric_case("auc_default", "auc", {}, two(auc_batch))
metric_case("auc_num_thresholds_3", "auc", {"num_thresholds": 3}, two(auc_batch))
metric_case("auc_num_thresholds_50", "auc", {"num_thresholds": 50}, two(auc_batch))
metric_case("auc_thresholds_even", "auc", {"thresholds": [0.25, 0.5, 0.75]}, two(auc_batch))
metric_case("auc_thresholds_uneven", "auc", {"thresholds": [0.1, 0.3, 0.45, 0.8]}, two(auc_batch))
metric_case("auc_pr", "auc", {"curve": "PR"}, two(auc_batch))
metric_case("auc_pr_minoring", "auc", {"curve": "PR", "summation_method": "minoring"}, two(auc_batch))
metric_case("auc_roc_majoring", "auc", {"summation_method": "majoring"}, two(auc_batch))
metric_case("auc_from_logits", "auc", {"from_logits": True}, two(auc_logit_batch))
metric_case("auc_sample_weight", "auc", {}, two(auc_batch, wNA))
metric_case("auc_weight_and_mask", "auc", {}, two(auc_batch, wNA, mNA))
metric_case("auc_multi_label_flattened", "auc", {}, two(lambda i: (bits((B, 3)), uniform((B, 3))), (wA, wB)))
metric_case(
    "auc_predictions_on_the_edges",
    "auc",
    {"num_thresholds": 5},
    [(f32([[0], [1], [0], [1], [1], [0]]), f32([[0], [1], [1], [0], [0.5], [0.25]]), None, None), auc_batch(1) + (None, None)],
)

# Regression metrics.
for metric in ["mean_absolute_error", "mean_squared_error", "root_mean_squared_error"]:
    metric_case(f"{metric}_default", metric, {}, two(lambda i: (normal((B, 3)), normal((B, 3)))))
    metric_case(f"{metric}_sample_weight", metric, {}, two(lambda i: (normal((B, 3)), normal((B, 3))), (wA, wB)))
    metric_case(f"{metric}_weight_and_mask", metric, {}, two(lambda i: (normal((B, 3)), normal((B, 3))), (wA, wB), (mA, mB)))
    metric_case(f"{metric}_target_rank_1", metric, {}, two(lambda i: (normal((B,)), normal((B, 1)))))
    metric_case(f"{metric}_sequence_mask", metric, {}, two(lambda i: (normal((SB, T, 2)), normal((SB, T, 2))), masks=(smA, smB)))
    metric_case(
        f"{metric}_sequence_batch_weight_and_mask",
        metric,
        {},
        two(lambda i: (normal((SB, T, 2)), normal((SB, T, 2))), (sbwA, sbwB), (smA, smB)),
        batch_weight=True,
    )

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_losses_metrics.json")
with open(path, "w") as f:
    # One case per line: small, and a regenerated file diffs case by case.
    f.write("{" + f'"keras_version": {json.dumps(keras.__version__)}, "jax_version": {json.dumps(jax.__version__)},\n')
    for key, cases in [("losses", LOSSES), ("metrics", METRICS)]:
        f.write(f'"{key}": [\n' + ",\n".join(json.dumps(c) for c in cases) + "\n]")
        f.write(",\n" if key == "losses" else "}\n")
print(f"wrote {len(LOSSES)} loss cases and {len(METRICS)} metric cases to {path}")
