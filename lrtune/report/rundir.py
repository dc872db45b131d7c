"""Run directories and atomic writers (temp name, then rename) for every output file."""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def make_run_dir(command: str, out: str | Path | None = None, create: bool = True) -> Path:
    """Create and return the run directory: `out`, or runs/<command>-<timestamp>/.

    With create=False only check it (a directory of another command is an error) and
    return the path, so that a command can refuse bad --out before doing any work.

    Raises:
        ConfigError: `out` holds another command's results.
    """
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{command}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = Path("runs") / f"{command}-{stamp}-{n}"
    else:
        path = Path(out)
        _check_not_other_run(path, command)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _check_not_other_run(path: Path, command: str) -> None:
    """Refuse to mix one command's files into another command's run directory."""
    import json

    from lrtune.errors import ConfigError

    found = [path / n for n in ("result.json", "doctor.json") if (path / n).is_file()]
    if not found:
        return
    try:
        other = json.loads(found[0].read_text()).get("command")
    except (ValueError, AttributeError):
        return
    if other and other != command:
        raise ConfigError(
            f"{path} holds the results of an 'lrtune {other}' run; give --out a new directory"
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write: Any, mode: str = "w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        newline = None if "b" in mode else ""
        with os.fdopen(fd, mode, newline=newline) as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write text atomically."""
    return _atomic(Path(path), lambda fh: fh.write(text))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _jsonable(obj.item())
    return obj


def to_json(obj: Mapping[str, Any]) -> str:
    """JSON text with schema_version first; NaN/inf become null."""
    data = {"schema_version": SCHEMA_VERSION, **_jsonable(obj)}
    return json.dumps(data, indent=2) + "\n"


def write_json(path: str | Path, obj: Mapping[str, Any]) -> Path:
    """Write a result JSON atomically, with schema_version."""
    return write_text(path, to_json(obj))


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV atomically."""

    def write(fh: Any) -> None:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])

    return _atomic(Path(path), write)


def write_yaml(path: str | Path, obj: Any) -> Path:
    """Write YAML atomically (block style, key order kept)."""
    import yaml

    return write_text(path, yaml.safe_dump(_jsonable(obj), sort_keys=False))


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    try:
        return _atomic(
            Path(path), lambda fh: fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight"), "wb"
        )
    finally:
        plt.close(fig)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (headless, never shows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
