"""Golden trajectories for strata's optimizers and learning-rate schedules, produced by Keras 3.

What it produces
----------------
``tests/golden/keras_optimizers.json`` (next to this script).  Every case
starts from the same two variables, ``dense.kernel`` (shape [3, 2]) and
``dense.bias`` (shape [2]), and applies the same fixed sequence of 5 gradient
sets with ``optimizer.apply(grads, variables)``, one step at a time.  After
every step it records both variables, every optimizer slot variable (under
strata's name ``{weight}.{slot}``, Keras' slot names), and the optimizer's
learning rate.  ``tests/golden_optimizers.rs`` replays each case on every
strata backend, building the optimizer from the Keras config recorded here.

How to run (from the repository root)
-------------------------------------
    KERAS_BACKEND=jax /work/keras-venv/bin/python tests/golden/keras_optimizers.py

JSON format
-----------
    {"keras_version": str, "jax_version": str,
     "weights": [{"name": "dense.kernel", "shape": [3, 2], "data": [...]},
                 {"name": "dense.bias", "shape": [2], "data": [...]}],
     "grads":   [[kernel_grad_data, bias_grad_data], ...]      (5 steps),
     "cases":   [case, ...]}

each case:

    {"name":           unique descriptive name,
     "config":         keras.saving.serialize_keras_object(optimizer), taken
                       before the first step (Keras' own form, with "module",
                       "registered_name", "name", "use_ema", ...),
     "learning_rates": [float(optimizer.learning_rate)] before step 1 and
                       after each step (6 values),
     "steps":          [{"weights": {name: data}, "slots": {name: data}}, ...]}

Determinism: initial values and gradients come from
``np.random.default_rng(0)``, rounded to 4 decimals and cast to float32.  The
gradient sets are scaled per step by 1, 0.5, 2, 0.1, 1 so clipping is active
on some steps and not others, and the bias gradient of step 4 is all zeros
(the zero-norm branch of clipnorm).  All numbers are float32 values written
with ``float(x)``, i.e. exactly.

Most cases use a learning rate of 0.1 rather than Keras' small defaults, so
the updates are large compared with the weights and a comparison tolerance
of ``1e-6 + 1e-5 * |x|`` on the weights checks the update itself closely.
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras import optimizers as O  # noqa: E402
from keras.optimizers import schedules as S  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 5
SCALES = [1.0, 0.5, 2.0, 0.1, 1.0]

rng = np.random.default_rng(0)


def f32(shape, scale=1.0):
    return (np.round(rng.standard_normal(shape) * scale, 4)).astype(np.float32)


KERNEL0 = f32((3, 2))
BIAS0 = f32((2,))
GRADS = []
for step in range(STEPS):
    gk = (f32((3, 2)) * np.float32(SCALES[step])).astype(np.float32)
    gb = (f32((2,)) * np.float32(SCALES[step])).astype(np.float32)
    if step == 3:
        gb = np.zeros(2, np.float32)
    GRADS.append((gk, gb))

WEIGHT_NAMES = ["dense.kernel", "dense.bias"]

# Keras' per-class slot lists, keyed by strata's slot names.
SLOT_ATTRS = {
    "SGD": [("momentum", "momentums")],
    "Adam": [("momentum", "_momentums"), ("velocity", "_velocities"), ("velocity_hat", "_velocity_hats")],
    "AdamW": [("momentum", "_momentums"), ("velocity", "_velocities"), ("velocity_hat", "_velocity_hats")],
    "RMSprop": [("velocity", "_velocities"), ("momentum", "_momentums"), ("average_gradient", "_average_gradients")],
    "Adagrad": [("accumulator", "_accumulators")],
}


def flat(x):
    return [float(v) for v in np.asarray(x, dtype=np.float32).reshape(-1)]


def slots(opt):
    out = {}
    for slot, attr in SLOT_ATTRS[type(opt).__name__]:
        for weight, var in zip(WEIGHT_NAMES, getattr(opt, attr, []) or []):
            out[f"{weight}.{slot}"] = flat(var.value)
    return out


def run(name, opt):
    config = keras.saving.serialize_keras_object(opt)
    kernel = keras.Variable(KERNEL0, name="kernel")
    bias = keras.Variable(BIAS0, name="bias")
    rates = [float(opt.learning_rate)]
    steps = []
    for gk, gb in GRADS:
        opt.apply([jax.numpy.asarray(gk), jax.numpy.asarray(gb)], [kernel, bias])
        rates.append(float(opt.learning_rate))
        steps.append({"weights": {"dense.kernel": flat(kernel.value), "dense.bias": flat(bias.value)}, "slots": slots(opt)})
    assert int(opt.iterations) == STEPS
    return {"name": name, "config": config, "learning_rates": rates, "steps": steps}


def cases():
    yield "sgd_plain", O.SGD(learning_rate=0.1)
    yield "sgd_momentum", O.SGD(learning_rate=0.1, momentum=0.9)
    yield "sgd_nesterov", O.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    yield "sgd_default", O.SGD()
    yield "adam_default", O.Adam()
    yield "adam_lr0.1", O.Adam(learning_rate=0.1)
    yield "adam_amsgrad", O.Adam(learning_rate=0.1, beta_1=0.8, beta_2=0.99, epsilon=1e-3, amsgrad=True)
    yield "adamw_default", O.AdamW()
    yield "adamw", O.AdamW(learning_rate=0.1, weight_decay=0.05)
    yield "rmsprop_default", O.RMSprop()
    yield "rmsprop_lr0.1", O.RMSprop(learning_rate=0.1)
    yield "rmsprop_momentum_centered", O.RMSprop(learning_rate=0.1, rho=0.8, momentum=0.5, centered=True)
    yield "rmsprop_momentum", O.RMSprop(learning_rate=0.1, momentum=0.5)
    yield "rmsprop_centered", O.RMSprop(learning_rate=0.1, centered=True)
    yield "adagrad_default", O.Adagrad()
    yield "adagrad", O.Adagrad(learning_rate=0.1, initial_accumulator_value=0.5, epsilon=1e-5)
    # Clipping and weight decay.
    yield "sgd_clipnorm", O.SGD(learning_rate=0.1, clipnorm=1.5)
    yield "sgd_clipvalue", O.SGD(learning_rate=0.1, clipvalue=0.5)
    yield "sgd_global_clipnorm", O.SGD(learning_rate=0.1, global_clipnorm=1.5)
    yield "sgd_weight_decay", O.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.1)
    yield "adam_clipnorm", O.Adam(learning_rate=0.1, clipnorm=1.5)
    yield "adam_clipvalue", O.Adam(learning_rate=0.1, clipvalue=0.5)
    yield "adam_global_clipnorm", O.Adam(learning_rate=0.1, global_clipnorm=1.5)
    yield "adam_weight_decay", O.Adam(learning_rate=0.1, weight_decay=0.1)
    # Schedules.
    yield "sgd_exponential_decay", O.SGD(learning_rate=S.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5))
    yield "sgd_exponential_decay_staircase", O.SGD(
        learning_rate=S.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5, staircase=True), momentum=0.9
    )
    yield "adam_cosine_decay", O.Adam(learning_rate=S.CosineDecay(0.1, decay_steps=4, alpha=0.1))
    yield "sgd_cosine_decay_warmup", O.SGD(
        learning_rate=S.CosineDecay(0.0, decay_steps=3, warmup_target=0.1, warmup_steps=2)
    )
    yield "sgd_piecewise_constant", O.SGD(learning_rate=S.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01]))
    yield "adam_piecewise_constant", O.Adam(learning_rate=S.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01]))


def main():
    # Clipping must be active on some steps and inactive on others.
    norms = [float(np.linalg.norm(gk)) for gk, _ in GRADS]
    assert any(n > 1.5 for n in norms) and any(n < 1.5 for n in norms), norms
    global_norms = [float(np.sqrt(np.sum(gk**2) + np.sum(gb**2))) for gk, gb in GRADS]
    assert any(n > 1.5 for n in global_norms) and any(n < 1.5 for n in global_norms), global_norms

    out = {
        "keras_version": keras.__version__,
        "jax_version": jax.__version__,
        "weights": [
            {"name": "dense.kernel", "shape": [3, 2], "data": flat(KERNEL0)},
            {"name": "dense.bias", "shape": [2], "data": flat(BIAS0)},
        ],
        "grads": [[flat(gk), flat(gb)] for gk, gb in GRADS],
        "cases": [run(name, opt) for name, opt in cases()],
    }
    names = [c["name"] for c in out["cases"]]
    assert len(names) == len(set(names)), names
    path = os.path.join(HERE, "keras_optimizers.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {len(names)} cases to {path}")


if __name__ == "__main__":
    main()
