"""Every architecture seqcast knows, one family per file; importing this package registers them all.

The model contract (DESIGN.md rule 2), with the shape letters used across seqcast:

    B  batch of windows        L  lookback (input steps)
    H  horizon (output steps)  C  channels (target series forecast together)
    F  calendar features (``_layers.N_TIME_FEATURES``), known for the past and the future
    Q  query steps of an attention map (L or H)

    Model(lookback, horizon, n_features, *, <hyperparameters with defaults>)
    model(x, time_features=None) -> y
        x: (B, L, C) scaled values; time_features: (B, L + H, F) or None; y: (B, H, C).
    model.explain(x, time_features=None) -> {"<layer>.<what>": tensor}   (only with explain declared)
        explain="attention": what is self_attention (B, L, L: queries are input steps), or
            cross_attention / attention (B, H, L: queries are horizon steps); rows sum to 1 over L.
        explain="gates": what is a gate name, (B, L): its mean activation at each input step.

What the pipeline needs to know about a model (learning rate, window normalisation, calendar
inputs, explain, season) is declared where it registers: ``registry.Capabilities``. A model that
declares ``calendar=True`` reads calendar features when built with its ``calendar`` switch on, and
must still work when they are None (integer-step data has no calendar). Models keep no state
between calls and never import pandas, data, training or cli.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
