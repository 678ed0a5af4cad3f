"""Every architecture seqcast knows, one family per file; importing this package registers them all.

The model contract (DESIGN.md rule 2), with the shape letters used across seqcast:

    B  batch of windows        L  lookback (input steps)
    H  horizon (output steps)  C  channels (target series forecast together)
    P  past covariates (observed up to the forecast origin)
    F  known-future inputs: calendar features and future covariates, known for the horizon too
    S  static covariates (one value per series; a category as one input per category)
    Q  query steps of an attention map (L or H)

    Model(lookback, horizon, n_features, *, <hyperparameters with defaults>, covariates=Covariates())
    model(x, *, past=None, future=None, static=None) -> y
        x: (B, L, C) scaled values; past: (B, L, P); future: (B, L + H, F); static: (B, S); y: (B, H, C).
    model.explain(x, *, past=None, future=None, static=None) -> {"<layer>.<what>": tensor}   (explain declared)
        explain="attention": what is self_attention (B, L, L: queries are input steps), or
            cross_attention / attention (B, H, L: queries are horizon steps); rows sum to 1 over L.
        explain="gates": what is a gate name, (B, L): its mean activation at each input step.

What the pipeline needs to know about a model (learning rate, window normalisation, the covariate
kinds it reads, explain, season) is declared where it registers: ``registry.Capabilities``. A model
that declares covariates=("past", ...) takes a ``covariates`` keyword (``_layers.Covariates``, the
widths P, F, S; not a hyperparameter) and reads every input it was built for; the pipeline refuses
covariates to a model that does not declare their kind, so nothing is accepted and then ignored.
Covariates arrive z-scored with their training rows' statistics. Models keep no state between calls
and never import pandas, data, training or cli.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
