"""costsim: cost estimator and routing-policy simulator for AI coding agents."""

__version__ = "0.1.0"

from .errors import CostsimError  # noqa: E402

_API = ("compare", "CompareResult", "StrategyResult", "load_inputs", "evaluate_strategy")


def __getattr__(name):  # keep `import costsim` light: the API loads on first use
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'costsim' has no attribute {name!r}")


__all__ = ["CostsimError", *_API]
