"""The model registry: one name per architecture or preset, hyperparameters checked against signatures.

A model class registers itself with ``@register_model("name", **preset)``; stacked decorators
publish presets of one class. The constructor's keyword-only arguments are the hyperparameter
schema: ``--param key=value`` is validated and converted against them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UsageError

_MODELS: dict[str, "ModelSpec"] = {}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    preset: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        doc = (inspect.getdoc(self.cls) or "").strip().splitlines()
        return doc[0] if doc else ""

    @property
    def family(self) -> str:
        return self.cls.__module__.rsplit(".", 1)[-1]

    def defaults(self) -> dict[str, Any]:
        """Every hyperparameter with its default, the preset applied."""
        params = {
            p.name: p.default
            for p in inspect.signature(self.cls.__init__).parameters.values()
            if p.kind is p.KEYWORD_ONLY
        }
        params.update(self.preset)
        return params


def register_model(name: str, **preset: Any) -> Callable[[type], type]:
    """Class decorator: publish ``cls`` under ``name`` with the preset keyword arguments."""

    def decorate(cls: type) -> type:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is registered twice")
        _MODELS[name] = ModelSpec(name, cls, dict(preset))
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


def resolve_params(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full, typed hyperparameters for ``name``: defaults, then preset, then ``params``."""
    spec = get_spec(name)
    resolved = spec.defaults()
    for key, raw in (params or {}).items():
        if key not in resolved:
            accepted = ", ".join(sorted(resolved)) or "(none)"
            raise UsageError(f"--param {key}: {name} has no such parameter; accepted: {accepted}")
        resolved[key] = _convert(raw, resolved[key], key, name)
    return resolved


def create_model(name: str, lookback: int, horizon: int, n_features: int, params: dict | None = None):
    """Build the registered model ``name`` for windows of ``lookback`` -> ``horizon`` steps."""
    spec = get_spec(name)
    kwargs = resolve_params(name, params)
    try:
        return spec.cls(lookback, horizon, n_features, **kwargs)
    except (ValueError, AssertionError) as exc:
        raise UsageError(f"{name}: {exc}") from None


def parse_param_options(options: list[str] | None) -> dict[str, str]:
    """``["hidden_size=64", "num_layers=2"]`` -> ``{"hidden_size": "64", "num_layers": "2"}``."""
    out: dict[str, str] = {}
    for item in options or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: write it as key=value, e.g. --param hidden_size=64")
        out[key.strip()] = value.strip()
    return out
