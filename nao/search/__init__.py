"""Search loops: strategies, evaluators, executors, the run directory, ask/tell."""

from nao.search.loop import SearchConfig, load_config, resolve_config, run_search

__all__ = ["SearchConfig", "load_config", "resolve_config", "run_search"]
