"""Checkpoints that are intact (their digest matches) but describe what this seqcast must not build or
use are refused with exit 2: an unknown window normalisation, weights of another dtype."""

from __future__ import annotations

import copy

from seqcast import checkpoint as ckpt_module


def _refused(invoke, path, data, *messages):
    code, out, err = invoke("predict", path, data)
    assert code == 2 and out == "", err
    for message in messages:
        assert message in err, err


def test_an_unknown_window_norm_is_exit_2(invoke, tiny_ckpt, hourly_csv, tmp_path):
    ckpt = ckpt_module.load(tiny_ckpt)
    meta = ckpt_module.to_meta(ckpt)
    meta["model"]["window_norm"] = "sideways"
    path = tmp_path / "norm.ckpt"
    path.write_bytes(ckpt_module.to_bytes(ckpt_module.from_meta(meta, ckpt.model)))
    _refused(invoke, path, hourly_csv, "cannot build", "sideways")


def test_weights_of_another_dtype_are_refused_not_cast(invoke, tiny_ckpt, hourly_csv, tmp_path):
    ckpt = ckpt_module.load(tiny_ckpt)
    half = copy.deepcopy(ckpt.model).half()
    path = tmp_path / "half.ckpt"
    path.write_bytes(ckpt_module.to_bytes(ckpt_module.from_meta(ckpt_module.to_meta(ckpt), half)))
    _refused(invoke, path, hourly_csv, "is float16, the gru model needs float32")
