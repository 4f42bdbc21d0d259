"""The prediction log committer: ``python -m fti.serving.log_committer CONFIG_JSON``, started
by :class:`fti.serving.log_spool.SpoolLogWriter` (one per server process).

Every ``commit_seconds`` it takes the spool folder's lock, reads every complete spool file
(``*.mpk``, and ``*.jsonl`` of older servers: any worker's, also those of a server that died),
commits their rows into the log feature group of each feature view version (one insert per
version and round) and deletes the files. When its standard input ends (the server closed it
on shutdown, or the server died) it commits what is left and exits. SIGINT (Ctrl-C in a
terminal reaches the whole process group) is ignored: the server's own shutdown ends the
committer after its last rows. It runs at a lower CPU priority (nice 10) than the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.store import context_of

if TYPE_CHECKING:
    from fti.definitions.feature_group import FeatureGroupSpec
    from fti.services.context import StoreContext

__all__ = ["commit_spool", "decode_line", "decode_record", "main"]

log = logging.getLogger("fti.serving")

_BATCH_ROWS = 50_000


@contextmanager
def _locked(spool: Path) -> Iterator[None]:
    with (spool / ".commit.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def decode_line(line: str) -> tuple[tuple[str, int], dict[str, Any]]:
    """A JSON spool line -> ((view, version), the record ``append_records`` takes)."""
    return decode_record(json.loads(line))


def decode_record(record: Any) -> tuple[tuple[str, int], dict[str, Any]]:
    """A decoded spool record (a MessagePack map, or a string holding a JSON line) ->
    ((view, version), the record ``append_records`` takes)."""
    from fti.services import prediction_logs

    if isinstance(record, str):
        record = json.loads(record)
    key = (str(record.pop("fv")), int(record.pop("fv_version")))
    for column in prediction_logs.JSON_COLUMNS:
        record[column] = prediction_logs.to_json(record[column])
    return key, record


def commit_spool(
    ctx: StoreContext, spool: Path, specs: dict[tuple[str, int], FeatureGroupSpec] | None = None
) -> int:
    """Commit and delete every complete spool file in ``spool``; returns the rows committed."""
    from fti.services import prediction_logs
    from fti.serving.log_spool import LEGACY_SUFFIX, SPOOL_SUFFIX

    specs = {} if specs is None else specs
    with _locked(spool):
        files = sorted([*spool.glob(f"*{SPOOL_SUFFIX}"), *spool.glob(f"*{LEGACY_SUFFIX}")])
        if not files:
            return 0
        groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for path in files:
            for key, record in _records(path):
                groups.setdefault(key, []).append(record)
        total = 0
        for (fv_name, fv_version), records in groups.items():
            spec = specs.get((fv_name, fv_version))
            if spec is None:
                spec = prediction_logs.log_spec(ctx, fv_name, fv_version)
                specs[(fv_name, fv_version)] = spec
            for start in range(0, len(records), _BATCH_ROWS):
                chunk = records[start : start + _BATCH_ROWS]
                total += prediction_logs.append_records(ctx, spec, chunk)
        for path in files:
            path.unlink()
        return total


def _records(path: Path) -> Iterator[tuple[tuple[str, int], dict[str, Any]]]:
    """The rows of one spool file: MessagePack records, or JSON lines (``.jsonl``)."""
    from fti.serving.log_spool import LEGACY_SUFFIX

    if path.suffix == LEGACY_SUFFIX:
        for line in path.read_text().splitlines():
            if line:
                yield decode_line(line)
        return
    import msgpack  # type: ignore[import-untyped]

    data = path.read_bytes()
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(data))
    unpacker.feed(data)
    for record in unpacker:
        yield decode_record(record)


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Commits are batch work: on a busy machine the server's requests go first.
    with contextlib.suppress(OSError):
        os.nice(10)
    config = json.loads((sys.argv[1:] if argv is None else argv)[0])
    spool = Path(config["spool"])
    every = float(config.get("commit_seconds", 5.0))
    ended = threading.Event()

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(65536):
                pass
        finally:
            ended.set()

    threading.Thread(target=watch_stdin, name="fti-log-parent", daemon=True).start()
    from fti.store import connect

    store = config["store"]
    fs = connect(
        store["root"],
        offline=store.get("offline"),
        online=store.get("online"),
        registry=store.get("registry"),
        artifacts=store.get("artifacts"),
    )
    specs: dict[tuple[str, int], Any] = {}
    try:
        while True:
            last = ended.wait(every)
            try:
                commit_spool(context_of(fs), spool, specs)
            except Exception:
                log.exception("prediction log: commit of %s failed; retrying", spool)
                if last:
                    raise
            if last:
                return
    finally:
        fs.close()


if __name__ == "__main__":
    main()
