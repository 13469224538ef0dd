"""Search loops: strategies (nao, random, evolution), evaluators, the run directory."""

from nao.search.loop import SearchConfig, load_config, run_search

__all__ = ["SearchConfig", "load_config", "run_search"]
