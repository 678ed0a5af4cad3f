"""Building the network a forecaster runs, in one place: the registered model, bounded in size as it is
built, under the shared quantile head when it forecasts quantiles, inside its per-window normalisation,
and as an ensemble of members. ``fitting.fit`` builds through here and ``checkpoint.load`` rebuilds
through here, so a stored model is the model that was trained.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .errors import UsageError
from .registry import check_covariates, get_spec, list_models, missing_extra, resolve_params


DEFAULT_MAX_PARAMETERS = 100_000_000  # fit, compare and tune's --max-parameters: 100x the largest model at its defaults
_PARAMETERS_PER_PIECE = 25_000  # a model registers at most one tensor or module per this many parameters of its budget


class _TooLarge(Exception):
    pass


@contextmanager
def _bounded(max_bytes: tuple[int, int] | None, max_pieces: int | None = None) -> Iterator[None]:
    """Stop a model's construction the moment its parameters pass ``max_bytes[0]`` bytes, or its
    buffers ``max_bytes[1]``, or it has registered more than ``max_pieces`` tensors and modules.

    Torch's global registration hooks see every tensor a module registers as it is created, before
    an initialiser touches its memory, so an oversized request costs address space, not time or RAM.
    Counting pieces stops a model of many tiny layers (num_layers=100000) as soon, and a module
    copied whole (torch's own layer stacks deep-copy one layer) counts as it is copied.
    """
    if max_bytes is None:
        yield
        return
    import torch
    from torch.nn.modules.module import (register_module_buffer_registration_hook,
                                         register_module_module_registration_hook,
                                         register_module_parameter_registration_hook)

    totals = [0, 0, 0]  # bytes of parameters, bytes of buffers, pieces (tensors and modules)
    limits = (*max_bytes, max_pieces if max_pieces is not None else float("inf"))

    def add(kind: int, nbytes: int = 0) -> None:
        totals[kind] += nbytes
        totals[2] += 1
        if any(total > limit for total, limit in zip(totals, limits)):
            raise _TooLarge

    def counter(kind: int) -> Callable[[Any, str, Any], None]:
        def count(module: Any, name: str, tensor: Any) -> None:
            if tensor is not None:
                add(kind, tensor.nelement() * tensor.element_size())
        return count

    def count_module(module: Any, name: str, child: Any) -> None:
        add(2)

    setstate = torch.nn.Module.__setstate__

    def copied(module: Any, state: dict) -> None:  # a module deep-copied: its own tensors, as if registered
        for kind, key in ((0, "_parameters"), (1, "_buffers")):
            for tensor in (state.get(key) or {}).values():
                if tensor is not None:
                    add(kind, tensor.nelement() * tensor.element_size())
        add(2)
        setstate(module, state)

    handles = [register_module_parameter_registration_hook(counter(0)),
               register_module_buffer_registration_hook(counter(1)),
               register_module_module_registration_hook(count_module)]
    torch.nn.Module.__setstate__ = copied
    try:
        yield
    finally:
        torch.nn.Module.__setstate__ = setstate
        for handle in handles:
            handle.remove()


def create_model(name: str, lookback: int, horizon: int, n_features: int, params: dict | None = None,
                 max_bytes: tuple[int, int] | None = None, quantiles: tuple[float, ...] = (), covariates=None,
                 max_parameters: int | None = None):
    """Build the registered model ``name`` for windows of ``lookback`` -> ``horizon`` steps, reading the
    ``covariates`` (models/_layers.Covariates widths; None = none), under the shared quantile head when
    ``quantiles`` are given; with ``max_bytes`` (parameters, buffers), refuse (UsageError) as soon as
    its tensors would pass them. ``max_parameters`` (--max-parameters) is the budget fit, compare and
    tune give a model: that many float32 parameters (and buffers), and one tensor or module per
    25,000 of them (at least 4,000), refused as soon as construction passes it."""
    if max_parameters is not None:
        pieces = max(4_000, max_parameters // _PARAMETERS_PER_PIECE)
        budget = (4 * max_parameters, 4 * max_parameters)
    spec = get_spec(name)
    kwargs = resolve_params(name, params)
    if min(lookback, horizon, n_features) < 1:  # checked once here, so models check only their own settings
        raise UsageError(f"{name}: lookback, horizon and n_features must be at least 1")
    if covariates is not None and covariates.kinds:
        check_covariates(name, covariates.kinds)
    if spec.capabilities.covariates and covariates is not None:
        kwargs = {**kwargs, "covariates": covariates}
    given = ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items())) or "its defaults"
    try:
        with _bounded(budget, pieces) if max_parameters is not None else _bounded(max_bytes):
            model = spec.cls(lookback, horizon, n_features, **kwargs)
            if not quantiles:
                return model
            if not spec.capabilities.quantiles:
                raise UsageError(f"--quantiles: {name} does not declare quantile outputs; fit it without "
                                 "--quantiles (fit --level still gives it conformal intervals)")
            from .quantile_head import QuantileHead

            return QuantileHead(model, lookback, horizon, quantiles)
    except _TooLarge:
        if max_parameters is not None:
            raise UsageError(f"--max-parameters: {name} with {given} would have more than {max_parameters:,} "
                             f"parameters, or more than {pieces:,} tensors and layers; choose smaller --param "
                             "values, or raise --max-parameters") from None
        raise UsageError(f"{name} with {given}: its tensors would pass {max_bytes[0]:,} bytes of parameters "
                         f"or {max_bytes[1]:,} of buffers") from None
    except (ValueError, AssertionError) as exc:
        raise UsageError(f"{name}: {exc}") from None
    except (MemoryError, RuntimeError) as exc:  # torch reports a failed allocation as a RuntimeError
        if isinstance(exc, RuntimeError) and not any(w in str(exc) for w in ("allocate", "size calculation")):
            raise
        budget_note = f" (--max-parameters is {max_parameters:,})" if max_parameters else ""
        raise UsageError(f"{name} with {given}: not enough memory to build it; choose smaller --param values"
                         f"{budget_note}") from None


def build_network(name: str, lookback: int, horizon: int, n_targets: int, params: dict | None = None, *,
                  window_norm: str, seasons: tuple[int, ...], quantiles: tuple[float, ...] = (), covariates=None,
                  members: int = 1, seed: int | None = None, max_bytes: tuple[int, int] | None = None,
                  max_parameters: int | None = None):
    """``members`` models ``name`` (``create_model``'s arguments), each inside its window normalisation
    (window_norm.WindowNorm); several are an ensemble.Ensemble (their median forecast). With ``seed``,
    member i is built after seeding torch and numpy with ``seed + i``, so a model built again is the same
    to the bit. ``max_parameters`` bounds each member (``create_model``)."""
    import numpy as np
    import torch

    from .ensemble import Ensemble
    from .window_norm import WindowNorm

    missing = missing_extra(name)
    if missing:
        raise UsageError(missing)
    built = []
    for i in range(members):
        if seed is not None:
            torch.manual_seed(seed + i)
            np.random.seed((seed + i) % 2**32)
        built.append(WindowNorm(create_model(name, lookback, horizon, n_targets, params, max_bytes=max_bytes,
                                             quantiles=quantiles, covariates=covariates,
                                             max_parameters=max_parameters), window_norm, seasons))
    return built[0] if members == 1 else Ensemble(built)


def build_blend(members: list[tuple[str, dict, str]], weights: list[float], lookback: int, horizon: int,
                n_targets: int, *, seasons: tuple[int, ...], quantiles: tuple[float, ...] = (), covariates=None,
                max_bytes: tuple[int, int] | None = None, max_parameters: int | None = None):
    """The weighted ensemble of different models ``--model auto`` keeps (ensemble.Blend): each member
    ``(name, params, window_norm)`` built as ``build_network`` builds it, reading the covariate inputs
    when its model declares their kinds (the others read the targets alone)."""
    from .ensemble import Blend

    built, reads = [], []
    for name, params, norm in members:
        takes = covariates is not None and bool(covariates.kinds) and set(covariates.kinds) <= set(
            get_spec(name).capabilities.covariates)
        built.append(build_network(name, lookback, horizon, n_targets, params, window_norm=norm, seasons=seasons,
                                   quantiles=quantiles, covariates=covariates if takes else None,
                                   max_bytes=max_bytes, max_parameters=max_parameters))
        reads.append(takes)
    return Blend(built, weights, reads)


def members_of(network) -> list:
    """The members of a network ``build_network`` made: the ensemble's, or the one model."""
    from .ensemble import Ensemble

    return list(network.members) if isinstance(network, Ensemble) else [network]


def catalogue() -> list[dict[str, Any]]:
    """Every registered model, as `seqcast models` lists it: family, size at lookback 96 and horizon 24 on
    one channel, summary, hyperparameter defaults and declared capabilities."""
    entries = []
    for name in list_models():
        spec = get_spec(name)
        caps = spec.capabilities
        model = create_model(name, 96, 24, 1)
        entries.append({"model": name, "family": spec.family, "parameters": sum(p.numel() for p in model.parameters()),
                        "summary": spec.summary, "defaults": spec.defaults(), "window_norm": caps.window_norm,
                        "panel_window_norm": caps.panel_window_norm or caps.window_norm,
                        "panel_loss": caps.panel_loss, "covariates": list(caps.covariates),
                        "extra": caps.extra or None, "extra_missing": bool(missing_extra(name)),
                        "search": {k: d.describe() for k, d in caps.search.items()}})
    return entries
