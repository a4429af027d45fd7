"""A local journal of push answers the database could not take, replayed by a job when it can.

The one fact PesaDesk must never lose is Daraja's answer to a push: without its
CheckoutRequestID a customer who paid leaves a payment `unknown` that only a human can settle.
If the database fails just when that answer arrives, the answer is written here (one JSON line
per answer, flushed to disk) and to the log, and the `push-journal` job (app.jobs) applies it
once the database is back. Replaying is idempotent: an answer already applied changes nothing.

The file lives in the instance folder, so the scheduler must run on the host whose web
workers write it (README, "Running it in production").
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from flask import current_app

log = logging.getLogger(__name__)

FILENAME = "push-journal.jsonl"


def path() -> Path:
    return Path(current_app.instance_path) / FILENAME


@contextmanager
def _locked(mode: str) -> Iterator[TextIO]:
    """The journal file, under an exclusive lock shared by every process of this host."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, mode, encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def keep(entry: dict[str, Any]) -> None:
    """Append one push answer; durable (fsync) before this returns."""
    line = json.dumps(entry, sort_keys=True)
    # The log line is the second copy: whoever reads the logs can attach it by hand.
    log.error("push answer not saved to the database; kept in the journal: %s", line)
    with _locked("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def entries() -> list[dict[str, Any]]:
    """What the journal holds now (for the admin and tests)."""
    if not path().exists():
        return []
    with _locked("r") as f:
        return [json.loads(line) for line in f if line.strip()]


def replay(apply: Callable[[dict[str, Any]], None]) -> dict[str, int]:
    """Apply every kept answer with `apply`; keep those that fail again for the next run."""
    if not path().exists():
        return {"replayed": 0, "kept": 0}
    with _locked("r+") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
        kept: list[str] = []
        replayed = 0
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                log.error("unreadable push-journal line kept for a human: %r", line[:300])
                kept.append(line)
                continue
            try:
                apply(entry)
            except Exception:
                log.exception("push-journal entry could not be applied yet: %s", line)
                kept.append(line)
            else:
                replayed += 1
        f.seek(0)
        f.truncate()
        f.write("".join(f"{line}\n" for line in kept))
        f.flush()
        os.fsync(f.fileno())
    return {"replayed": replayed, "kept": len(kept)}
