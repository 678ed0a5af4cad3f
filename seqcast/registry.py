"""The model registry: one name per architecture or preset, hyperparameters checked against signatures,
capabilities declared where a model registers.

A model class registers itself with ``@register_model("name", preset={...}, **capabilities)``;
stacked decorators publish presets of one class, and a preset's values are fixed for its name. The
constructor's keyword-only arguments are the hyperparameter schema: ``--param key=value`` is
validated and converted against them. ``Capabilities`` is what the pipeline needs to know about a
model without building it (learning rate, window normalisation, the covariate kinds it reads, explain,
season, quantiles, the loss it trains a panel on, what `tune` may vary);
the declaration is checked when the model's module is imported, so a typo fails there, by name.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from .errors import UsageError

DEFAULT_LR = 3e-3  # the training loop's peak learning rate, for models that declare no other
EXPLAIN_KINDS = ("attention", "gates")
ONNX_EXPORTERS = ("dynamo", "torchscript")
# the optional extras a model may need (pip install 'seqcast[stats]'), each with the module it brings
EXTRAS = {"stats": "statsforecast"}
COVARIATE_INPUTS = ("past", "future", "static")  # the contract's covariate inputs (models/_layers.Covariates)
COVARIATE_OPTIONS = {"past": "--past-cols", "future": "--future-cols or --calendar", "static": "--static-cols"}
# the per-window normalisations window_norm.WindowNorm applies (what each does: its docstring)
WINDOW_NORMS = ("none", "last", "mean", "revin", "season", "deseason")
POINT_LOSSES = ("mse", "mae")  # fit --loss (quantile_head.point_loss), on values scaled per series: both scale-free

_MODELS: dict[str, "ModelSpec"] = {}


@dataclass(frozen=True)
class Capabilities:
    """What a model declares about itself: each field is a keyword argument of ``register_model``."""

    lr: float = DEFAULT_LR  # peak learning rate of the training loop, in (0, 1]
    window_norm: str = "last"  # per-window normalisation under --window-norm auto (window_norm.WINDOW_NORMS)
    # the covariate inputs it reads, built with their widths (its `covariates` keyword, models/_layers.Covariates):
    # "past" (B, L, P), "future" (B, L + H, F: calendar features and known-future covariates), "static" (B, S)
    covariates: tuple[str, ...] = ()
    explain: str | None = None  # what its explain(x, *, past, future, static) returns: "attention" maps or "gates"
    season: bool = False  # its `season` hyperparameter, when not given, is the data frequency's season
    starts_at_level: bool = True  # untrained, it forecasts the window's reference level (a zero head)
    quantiles: bool = True  # fit --quantiles may put the shared quantile head (quantile_head.py) on it
    panel_loss: str = "mse"  # its point loss under --loss auto on a panel (one series: always mse), as validated
    panel_window_norm: str | None = None  # its window normalisation under --window-norm auto on a panel, when it
    # differs from window_norm (validated on a panel, where window_norm was validated on one long series)
    search: dict[str, Any] = field(default_factory=dict)  # what `seqcast tune` varies (search.py dimensions)
    # how `seqcast export` traces it to ONNX: "dynamo" (torch.export) or "torchscript" (the legacy tracer), as
    # measured (docs/benchmarks.md, "Edge"): dynamo takes 2-10 s on torch's recurrent layers and unrolls the
    # vanilla RNN over time, and its LSTM graphs lose onnxruntime's quantized LSTM
    onnx_exporter: str = "dynamo"
    # a statistical model: it fits each window on its own as it forecasts (in Python, through a kept library),
    # so it has nothing to train, no ONNX form and no quantile head, and reads its windows as they are
    statistical: bool = False
    extra: str | None = None  # the optional extra (a key of EXTRAS) it needs to forecast; None: none


def missing_extra(name: str) -> str | None:
    """What to install for model ``name`` when the optional extra it needs is absent; None when present."""
    import importlib.util

    extra = get_spec(name).capabilities.extra
    if extra is None or importlib.util.find_spec(EXTRAS[extra]) is not None:
        return None
    return f"{name} needs {EXTRAS[extra]}: pip install 'seqcast[{extra}]'"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    preset: dict[str, Any] = field(default_factory=dict)
    capabilities: Capabilities = Capabilities()

    @property
    def summary(self) -> str:
        doc = (inspect.getdoc(self.cls) or "").strip().splitlines()
        return doc[0] if doc else ""

    @property
    def family(self) -> str:
        return self.cls.__module__.rsplit(".", 1)[-1]

    def defaults(self) -> dict[str, Any]:
        """Every hyperparameter with its default, the preset applied."""
        return {**_keywords(self.cls), **self.preset}



def _keywords(cls: type) -> dict[str, Any]:
    """The constructor's keyword-only arguments with their defaults: the hyperparameter schema (less
    ``covariates``, the covariate widths the pipeline builds the model for)."""
    return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name != "covariates"}


def _declare(name: str, cls: type, preset: dict[str, Any], declared: dict[str, Any]) -> Capabilities:
    """The checked capabilities of ``cls`` registered as ``name``; ValueError naming the model if wrong."""
    def wrong(problem: str) -> ValueError:
        return ValueError(f"model {name!r} ({cls.__module__}.{cls.__qualname__}): {problem}")

    keywords = _keywords(cls)
    known = [f.name for f in fields(Capabilities)]
    for key in declared:
        if key not in known:
            hint = f"; to fix the hyperparameter, pass preset={{{key!r}: ...}}" if key in keywords else ""
            raise wrong(f"unknown capability {key!r}; declare only {', '.join(known)}{hint}")
    unknown = [key for key in preset if key not in keywords]
    if unknown:
        accepted = ", ".join(keywords) or "(none)"
        raise wrong(f"preset {', '.join(unknown)} not a keyword of __init__; accepted: {accepted}")
    caps = Capabilities(**declared)
    if isinstance(caps.lr, bool) or not isinstance(caps.lr, (int, float)) or not 0 < caps.lr <= 1:
        raise wrong(f"lr={caps.lr!r}: a learning rate must be a number in (0, 1]")
    if caps.panel_loss not in POINT_LOSSES:
        raise wrong(f"panel_loss={caps.panel_loss!r}: choose one of {', '.join(POINT_LOSSES)}")
    for key in ("window_norm", "panel_window_norm"):
        value = getattr(caps, key)
        if value not in WINDOW_NORMS and (key == "window_norm" or value is not None):
            raise wrong(f"{key}={value!r}: choose one of {', '.join(WINDOW_NORMS)}")
    if caps.explain not in (None, *EXPLAIN_KINDS):
        raise wrong(f"explain={caps.explain!r}: choose one of {', '.join(EXPLAIN_KINDS)} (or leave it out)")
    if caps.explain and not callable(getattr(cls, "explain", None)):
        raise wrong(f"declares explain={caps.explain!r} but defines no explain(x, *, past=None, future=None, static=None) method")
    if caps.onnx_exporter not in ONNX_EXPORTERS:
        raise wrong(f"onnx_exporter={caps.onnx_exporter!r}: choose one of {', '.join(ONNX_EXPORTERS)}")
    if caps.extra not in (None, *EXTRAS):
        raise wrong(f"extra={caps.extra!r}: choose one of {', '.join(EXTRAS)} (or leave it out)")
    if caps.statistical and (caps.quantiles or caps.window_norm != "none" or caps.starts_at_level or caps.search):
        raise wrong("a statistical model declares quantiles=False, window_norm='none', starts_at_level=False "
                    "and no search space")
    for flag in ("season", "starts_at_level", "quantiles", "statistical"):
        if not isinstance(getattr(caps, flag), bool):
            raise wrong(f"{flag}={getattr(caps, flag)!r}: declare True or False")
    from .search import check_dimension

    for key, dimension in caps.search.items():
        if key not in keywords or key in preset:
            raise wrong(f"search {key!r}: not a hyperparameter this model may vary (its keywords: "
                        f"{', '.join(k for k in keywords if k not in preset) or 'none'})")
        problem = check_dimension(key, dimension)
        if problem:
            raise wrong(problem)
    if caps.season and "season" not in keywords:
        raise wrong("declares season=True but has no `season` keyword in __init__ to fill")
    if not isinstance(caps.covariates, tuple) or not set(caps.covariates) <= set(COVARIATE_INPUTS):
        raise wrong(f"covariates={caps.covariates!r}: declare a tuple of {', '.join(COVARIATE_INPUTS)}")
    takes = "covariates" in inspect.signature(cls.__init__).parameters
    if caps.covariates and not takes:
        raise wrong(f"declares covariates={caps.covariates!r} but has no `covariates` keyword in __init__")
    if takes and not caps.covariates:
        raise wrong("has a `covariates` keyword in __init__ but declares no covariates=(...) it reads")
    return caps


def register_model(name: str, *, preset: dict[str, Any] | None = None, **capabilities: Any) -> Callable[[type], type]:
    """Class decorator: publish ``cls`` under ``name``, with ``preset`` hyperparameters fixed and the
    declared ``capabilities`` (keywords of ``Capabilities``), both checked now."""

    def decorate(cls: type) -> type:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is registered twice")
        fixed = dict(preset or {})
        _MODELS[name] = ModelSpec(name, cls, fixed, _declare(name, cls, fixed, capabilities))
        return cls

    return decorate


def _load_models() -> None:
    from . import models  # noqa: F401  (importing registers every architecture)


def list_models() -> list[str]:
    _load_models()
    return sorted(_MODELS)


def get_spec(name: str) -> ModelSpec:
    _load_models()
    try:
        return _MODELS[name]
    except KeyError:
        raise UsageError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(_MODELS))}"
        ) from None


def _convert(raw: Any, default: Any, key: str, model: str) -> Any:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(int(v) for v in text.replace(";", ",").split(",") if v)
    except ValueError:
        kind = type(default).__name__
        raise UsageError(f"--param {key}={raw}: {model} expects {kind} for {key}") from None
    if default is None:
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
    return text


def _typed(value: Any) -> str:
    """``value`` as a user types it after ``--param key=``."""
    if isinstance(value, bool):
        return str(value).lower()
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _fixed_by_preset(spec: ModelSpec, key: str, value: Any) -> UsageError:
    """The error for changing a preset's fixed hyperparameter, naming the preset to pick instead."""
    wanted = {**spec.defaults(), key: value}
    message = f"--param {key}={_typed(value)}: {spec.name} fixes {key}={_typed(spec.preset[key])}"
    # another preset of the same class that agrees with what was asked, plus what it must still be told
    for other in sorted(_MODELS.values(), key=lambda s: (len(s.preset), s.name)):
        if other.cls is spec.cls and other is not spec and all(wanted[k] == v for k, v in other.preset.items()):
            rest = " ".join(f"--param {k}={_typed(wanted[k])}" for k in spec.preset
                            if k not in other.preset and other.defaults()[k] != wanted[k])
            return UsageError(f"{message}; use --model {other.name}{' ' + rest if rest else ''} instead")
    return UsageError(f"{message}; choose another --model")


def resolve_params(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full, typed hyperparameters for ``name``: defaults, then preset, then ``params``.

    A preset's values are its identity: ``params`` may repeat them (a checkpoint stores them) but
    not change them, so that a model named gru is always a GRU.
    """
    spec = get_spec(name)
    resolved = spec.defaults()
    for key, raw in (params or {}).items():
        if key not in resolved:
            accepted = ", ".join(sorted(resolved)) or "(none)"
            raise UsageError(f"--param {key}: {name} has no such parameter; accepted: {accepted}")
        value = _convert(raw, resolved[key], key, name)
        if key in spec.preset and value != spec.preset[key]:
            raise _fixed_by_preset(spec, key, value)
        resolved[key] = value
    return resolved


def models_reading(kinds: tuple[str, ...]) -> list[str]:
    """The registered models that read every covariate kind of ``kinds``."""
    return [n for n in list_models() if set(kinds) <= set(_MODELS[n].capabilities.covariates)]


def check_covariates(name: str, kinds: tuple[str, ...]) -> None:
    """UsageError unless model ``name`` reads every covariate kind of ``kinds``, naming the models that do."""
    missing = [kind for kind in kinds if kind not in get_spec(name).capabilities.covariates]
    if missing:
        able = models_reading(kinds)
        raise UsageError(f"{name} cannot use {_and(missing)} covariates "
                         f"({', '.join(COVARIATE_OPTIONS[k] for k in missing)}); "
                         + (f"models that use {_and(kinds)} covariates: {', '.join(able)}" if able
                            else "no model uses them all together"))


def _and(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
