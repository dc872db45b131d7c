"""Where a search keeps its trials: Optuna storages, and recovering a killed search.

Embedded default: Optuna's journal file storage in the run directory
(`RUN_DIR/study.journal`), safe for several worker processes on one machine. `--storage
URL` (postgresql://, mysql://, sqlite:///) uses an RDB storage shared by workers on many
machines.

lrtune's bookkeeping lives in each trial's user attributes (prefix `lrtune_`), so the
storage alone is enough to resume a search and to rebuild every output file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lrtune.errors import ConfigError

JOURNAL_NAME = "study.journal"

# Trial user attributes.
KEY = "lrtune_key"  # '<config index>/<seed>': unique within a pass
INDEX = "lrtune_index"  # the trial's place in the pass's plan (config x seeds): its number
POINT = "lrtune_point"  # the searched values (JSON-able dict)
CONFIG = "lrtune_config"  # the configuration index (trials of one config differ by seed)
SEED = "lrtune_seed"
ROLE = "lrtune_role"  # absent for real trials; 'abandoned' | 'duplicate' | 'spurious'
RESULT = "lrtune_result"  # the trial's outcome (see runner.TrialOutcome.to_attrs)
# Study user attributes.
PLANNED = "lrtune_planned"  # the pass's trials are all enqueued
LR_AUTO = "lrtune_lr_auto"  # the range test's LR for `lr: auto`
SPACE = "lrtune_space"  # the pass's space (refine pass: the narrowed one)


def journal_path(run_dir: Path) -> Path:
    """The embedded storage file of a run directory."""
    return Path(run_dir) / JOURNAL_NAME


def open_storage(spec: str) -> Any:
    """An Optuna storage from a spec: a journal file path, or a database URL.

    Raises:
        ConfigError: the URL's database cannot be reached (one line).
    """
    import optuna

    if "://" in spec:
        try:
            return optuna.storages.RDBStorage(spec)
        except Exception as exc:  # driver missing, server down, bad URL
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--storage {spec}: cannot open the database: {first}") from None
    journal = getattr(optuna.storages, "journal", None)
    backend_cls = getattr(journal, "JournalFileBackend", None)
    if backend_cls is None:  # optuna < 4.0
        backend_cls = optuna.storages.JournalFileStorage
    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(backend_cls(str(spec)))


def redact_url(url: str) -> str:
    """A database URL without its password, fit to be written into result.json (the
    database client finds the password again, e.g. in PGPASSWORD or ~/.pgpass)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; lrtune owns the terminal."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def live_keys(trials: Iterable[Any]) -> set[str]:
    """Keys of trials that count: everything except abandoned/duplicate/spurious ones."""
    return {
        str(t.user_attrs[KEY]) for t in trials if KEY in t.user_attrs and ROLE not in t.user_attrs
    }


def recover_running(study: Any, storage: Any) -> int:
    """Fail the trials a dead worker left RUNNING, marking them abandoned.

    The journal storage has no heartbeat, so only call this when no other worker is
    running this study (`--resume`). The caller re-enqueues their keys.

    Returns:
        How many trials were recovered.
    """
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(t._trial_id, ROLE, "abandoned")
        study.tell(t.number, state=TrialState.FAIL)
        n += 1
    return n
