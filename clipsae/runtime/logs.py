"""Logging for workflow jobs: everything a step says, progress bars included, goes to its log."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def job_log(path: str | Path) -> Iterator[None]:
    """Send logging and stderr (where tqdm draws) to ``path`` for the duration of a job.

    Exceptions are logged with their traceback before they propagate, so the log file alone
    explains a failed job.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as stream, contextlib.redirect_stderr(stream):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        except Exception:
            logging.getLogger("clipsae").exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
            sys.stderr.flush()
