"""seqcast: the lineage of sequence models, from the vanilla RNN to Informer, as one forecasting CLI.

The small Python API (torch and pandas load on first use):

    from seqcast import load_series, fit, save, load, predict, backtest
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """Load the library lazily, so that ``import seqcast`` (and ``seqcast --help``) stays fast."""
    import importlib

    homes = {"load_series": "data", "DataConfig": "data", "fit": "fitting", "TrainConfig": "training",
             "ModelConfig": "fitting", "save": "checkpoint", "load": "checkpoint",
             "predict": "forecasting", "backtest": "evaluation", "compare": "comparing",
             "list_models": "registry"}
    if name in homes:
        return getattr(importlib.import_module(f"{__name__}.{homes[name]}"), name)
    raise AttributeError(f"module 'seqcast' has no attribute {name!r}")
