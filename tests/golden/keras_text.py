"""Golden reference values for strata's ``TextVectorization``, from Keras 3.

What it produces
----------------
``tests/golden/keras_text.json`` (next to this script): cases, each a
``keras.layers.TextVectorization`` config (``output_mode="int"``), the
corpus it adapts on (or the vocabulary it is given), the vocabulary Keras
learns (``get_vocabulary()``), and the id rows it gives for some texts.
``tests/text.rs`` checks strata's ``strata::text::TextVectorization``
against it.

How to run (from the repository root)
-------------------------------------
    python3 -m venv keras-venv && keras-venv/bin/pip install keras jax safetensors tensorflow-cpu
    KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_text.py

(Keras' TextVectorization needs TensorFlow for its string ops, whatever the
backend.)

Findings (Keras 3.15.1, TensorFlow 2.x):
  * ``lower`` is ``tf.strings.lower`` without an encoding: ASCII only
    ("ÉTÉ" stays "ÉTÉ"); punctuation is the ASCII set
    ``[!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~']``.
  * The vocabulary is "" and "[UNK]", then tokens by count descending,
    ties in reverse byte order (``np.lexsort((tokens, counts))[::-1]``);
    ``max_tokens`` counts the two special tokens.
  * Without ``output_sequence_length`` rows are padded with 0 to the
    longest text of the call; with it, truncated or padded at the end.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "keras_text.json")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "The dog barks; the FOX runs!",
    "A quick-thinking dog, a lazy cat... and ÉTÉ été.",
    "cat  cat\tdog\n fox",
    "Don't stop: it's 10:30 (maybe 11)?",
]
TEXTS = [
    "the lazy fox",
    "A dog, a CAT and a bird!",
    "",
    "unknown words only",
    "été ÉTÉ don't stop the quick brown fox jumps over the lazy dog again",
]

cases = []


def add(name, config, vocabulary=None, corpus=CORPUS, texts=TEXTS):
    layer = keras.layers.TextVectorization(**config)
    if vocabulary is None:
        layer.adapt(corpus)
    else:
        layer.set_vocabulary(vocabulary)
    out = np.asarray(layer(texts))
    cases.append({
        "name": name,
        "config": config,
        "corpus": corpus if vocabulary is None else None,
        "set_vocabulary": vocabulary,
        "vocabulary": [str(t) for t in layer.get_vocabulary()],
        "texts": texts,
        "output": {"shape": list(out.shape), "data": [int(v) for v in out.ravel()]},
    })


add("defaults", {})
add("max_tokens_length", {"max_tokens": 8, "output_sequence_length": 6})
add("lower_character", {"standardize": "lower", "split": "character", "output_sequence_length": 12})
add("no_standardize", {"standardize": None, "max_tokens": 12})
add("strip_punctuation", {"standardize": "strip_punctuation", "output_sequence_length": 4})
add("no_split", {"split": None, "max_tokens": 6})
add("given_vocabulary", {"output_sequence_length": 5}, vocabulary=["dog", "the", "fox", "été"])

with open(OUT_PATH, "w") as f:
    json.dump({"keras_version": keras.__version__, "cases": cases}, f, indent=1, ensure_ascii=False)
print(f"wrote {len(cases)} cases to {OUT_PATH}")
