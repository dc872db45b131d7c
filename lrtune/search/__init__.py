"""`lrtune search`: grid and random search over the base LR and decay schedules, on Optuna.

- `load_search_config(path)` -> a validated `SearchConfig` (search.config)
- `run_search(cfg, run_dir, ...)` -> a `SearchResult` (search.runner)
- the space (search.space), the drivers (search.drivers), the pruners (search.pruners)
  and the storage (search.storage).

Import cost: this package imports Optuna and torch only inside functions.
"""

from lrtune.search.config import SearchConfig, SearchSettings, load_search_config
from lrtune.search.results import ConfigSummary, SearchResult, TrialRow
from lrtune.search.runner import SearchEvent, run_search

__all__ = [
    "ConfigSummary",
    "SearchConfig",
    "SearchEvent",
    "SearchResult",
    "SearchSettings",
    "TrialRow",
    "load_search_config",
    "run_search",
]
