"""Mechanism tests for the attention family: ProbSparse, distilling, Informer's one-pass decoder and
Transformer-XL's memory. What every model must do (batch independence, gradients, calendar inputs,
the maps behind ``seqcast explain``) is in test_model_contract.py."""

from __future__ import annotations

import math
import resource
import time

import pytest
import torch

from seqcast.models._layers import full_attention, n_top, prob_sparse_attention
from seqcast.build import create_model

from conftest import randomised

# --- ProbSparse -------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "expected"), [(1, 1), (2, 2), (8, 8), (20, 15), (96, 25), (200, 30)])
def test_n_top_is_c_ceil_ln_length_clamped(length, expected):
    assert n_top(length, 5) == expected == min(length, max(1, 5 * math.ceil(math.log(length))))


def test_prob_sparse_selects_u_queries_and_lazy_ones_take_mean_of_values():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 200, 8) for _ in range(3))
    out, weights, top = prob_sparse_attention(q, k, v, factor=5, need_weights=True)
    assert top.shape == (2, 3, n_top(200, 5)) == (2, 3, 30)
    full_out, full_weights = full_attention(q, k, v)
    selected = torch.zeros(2, 3, 200, dtype=torch.bool).scatter(2, top, True)
    assert torch.allclose(out[selected], full_out[selected], atol=1e-5)  # active: exact attention
    lazy_mean = v.mean(dim=2, keepdim=True).expand_as(v)
    assert torch.allclose(out[~selected], lazy_mean[~selected], atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 200))


def test_prob_sparse_causal_lazy_queries_take_running_mean():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 100, 4) for _ in range(3))
    out, _, top = prob_sparse_attention(q, k, v, factor=2, causal=True)
    selected = torch.zeros(1, 2, 100, dtype=torch.bool).scatter(2, top, True)
    running = v.cumsum(2) / torch.arange(1, 101).view(1, 1, 100, 1)
    assert torch.allclose(out[~selected], running[~selected], atol=1e-5)
    assert torch.allclose(out[selected], full_attention(q, k, v, causal=True)[0][selected], atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("random_sample", [False, True])
def test_prob_sparse_equals_full_attention_when_u_covers_every_query(causal, random_sample):
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 4, 12, 8) for _ in range(3))
    assert n_top(12, 5) >= 12
    out, weights, _ = prob_sparse_attention(q, k, v, 5, causal, random_sample, need_weights=True)
    full_out, full_weights = full_attention(q, k, v, causal)
    assert torch.allclose(out, full_out, atol=1e-6)
    assert torch.allclose(weights, full_weights, atol=1e-6)


# --- Informer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("lookback", "lengths"), [(96, [96, 48, 24]), (25, [25, 13, 7]), (2, [2, 2, 2])])
def test_distilling_halves_the_length_per_layer(lookback, lengths):
    model = create_model("informer", lookback, 4, 1, {"num_encoder_layers": 3}).eval()
    outputs = model.encode(torch.randn(2, lookback, 1))
    assert [o.shape[1] for o in outputs] == lengths  # L=2 stops: one key has nothing to attend over


def test_informer_decodes_the_whole_horizon_in_one_pass():
    model = randomised("informer", 96, 24, 7, label_len=48, num_decoder_layers=2).eval()
    seen = []
    for layer in model.decoder:
        layer.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    y = model(torch.randn(3, 96, 7))
    assert y.shape == (3, 24, 7) and torch.isfinite(y).all()
    assert seen == [(3, 48 + 24, 64)] * 2  # each decoder layer ran once over start tokens + placeholders


def test_informer_clamps_label_len_to_the_lookback():
    model = randomised("informer", 8, 5, 2, label_len=48)
    assert model.label_len == 8
    model(torch.randn(2, 8, 2)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


# --- Transformer-XL ---------------------------------------------------------------------------


def test_transformer_xl_memory_changes_the_output():
    with_memory = randomised("transformer_xl", 96, 8, 2, segment_len=24, mem_len=1).eval()
    without = create_model("transformer_xl", 96, 8, 2, {"segment_len": 24, "mem_len": 0}).eval()
    without.load_state_dict(with_memory.state_dict())  # same weights: memory adds no parameters
    x = torch.randn(3, 96, 2)
    with torch.no_grad():
        assert not torch.allclose(with_memory(x), without(x), atol=1e-4)
        changed = x.clone()
        changed[:, :72] += 1.0  # everything before the final segment (steps 72..95)
        assert torch.allclose(without(changed), without(x))  # no memory: earlier steps are invisible
        assert not torch.allclose(with_memory(changed), with_memory(x), atol=1e-4)


def test_transformer_xl_no_gradient_flows_into_memory():
    model = randomised("transformer_xl", 96, 8, 2, segment_len=24, mem_len=2).eval()
    x = torch.randn(2, 96, 2, requires_grad=True)
    model(x).sum().backward()
    assert torch.count_nonzero(x.grad[:, :72]) == 0  # earlier segments reach the output only via memory
    assert torch.count_nonzero(x.grad[:, 72:]) > 0
    with torch.no_grad():  # ... and they do reach it: the zero gradient is the stop-gradient, not disuse
        shifted = x.detach().clone()
        shifted[:, 50:72] += 1.0
        assert not torch.allclose(model(shifted), model(x.detach()), atol=1e-4)


def test_transformer_xl_long_lookback_runs_in_linear_memory():
    lookback = 16384
    model = randomised("transformer_xl", lookback, 24, 1)  # 683 segments of 24 steps
    x = torch.randn(1, lookback, 1)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    y = model(x)
    y.square().mean().backward()
    assert y.shape == (1, 24, 1) and torch.isfinite(y).all()
    assert time.perf_counter() - start < 60.0  # about 2 s on 2 idle cores; generous for a busy machine
    # one L x L float matrix would be 1 GiB; segments with memory need a few MiB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 256 * 1024


# --- hyperparameter checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [("transformer", {"d_model": 30, "nhead": 4}), ("informer", {"factor": 0}), ("patchtst", {"stride": 20}),
     ("transformer_xl", {"mem_len": -1}), ("lstm_attention", {"hidden_size": 0})],
)
def test_bad_hyperparameters_raise_a_clear_error(name, params):
    from seqcast.errors import UsageError

    with pytest.raises(UsageError, match=name):
        create_model(name, 96, 24, 1, params)
