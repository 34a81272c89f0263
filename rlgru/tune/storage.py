"""Where a study lives: a journal file in the out directory by default, or any storage URL Optuna opens.

The journal file needs no server and takes many processes on one machine (or on a file system they share); an RDB
URL (``sqlite:///``, ``postgresql://``, ``mysql://``) is what machines without a shared file system reach.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from rlgru.harness.errors import HarnessError

JOURNAL_FILE = "study.journal"
JOURNAL_PREFIX = "journal:"
RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def default_storage_url(out_dir: Path) -> str:
    """``journal:<out_dir>/study.journal``: the embedded default."""
    return f"{JOURNAL_PREFIX}{(Path(out_dir) / JOURNAL_FILE).resolve()}"


def open_storage(url: str) -> BaseStorage:
    """The storage behind ``url`` (``journal:PATH`` or an RDB URL); a one-line ``HarnessError`` if it cannot open."""
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) :])
        if not path.parent.is_dir():
            raise HarnessError(f"cannot open storage {url!r}: no directory {path.parent}", where="--storage")
        try:
            # an open(O_EXCL) lock works on NFS too, where symlink locks may not
            return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
        except (OSError, ValueError) as error:
            raise HarnessError(f"cannot open storage {url!r}: {error}", where="--storage") from None
    scheme = url.partition(":")[0].partition("+")[0]
    if scheme not in RDB_SCHEMES or "://" not in url:
        raise HarnessError(
            f"cannot open storage {url!r}: expected an RDB URL (sqlite:///study.db, postgresql://...) "
            f"or {JOURNAL_PREFIX}PATH",
            where="--storage",
        )
    try:
        return RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except Exception as error:  # noqa: BLE001 - SQLAlchemy and drivers raise many kinds; each is one line here
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HarnessError(f"cannot open storage {url!r}: {detail}", where="--storage") from None


def _engine_kwargs(url: str) -> dict:
    # several worker processes write one SQLite file: wait for its lock instead of failing at once
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; rlgru prints its own progress line instead."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


__all__ = ["JOURNAL_FILE", "default_storage_url", "open_storage", "quiet_optuna"]
