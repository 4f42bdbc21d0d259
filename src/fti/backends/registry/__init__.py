"""Registries: versioned JSON documents (feature groups, views, datasets, models, runs).

A registry stores *records*: ``(kind, name, version) -> body`` plus a revision counter for
compare-and-set updates, and an append-only event log per record (schema history, aliases, …).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fti.backends.registry.lineage_edges import EdgeRow, NodeKey

__all__ = ["Record", "Registry"]


@dataclass(frozen=True)
class Record:
    """One stored document."""

    kind: str
    name: str
    version: int
    body: dict[str, Any]
    revision: int
    created_at: datetime
    updated_at: datetime


class Registry(Protocol):
    """Metadata storage shared by every pipeline and process."""

    url: str

    def create(self, kind: str, name: str, version: int, body: dict[str, Any]) -> Record:
        """Insert a record; ConflictError if (kind, name, version) exists."""

    def create_next(
        self, kind: str, name: str, make_body: Callable[[int], dict[str, Any]]
    ) -> Record:
        """Insert at the next free version (gap-free under concurrency)."""

    def get(self, kind: str, name: str, version: int) -> Record | None:
        """One record, or None."""

    def records(self, kind: str, name: str | None = None) -> list[Record]:
        """Records of a kind (optionally one name), ordered by name, version."""

    def page(
        self,
        kind: str,
        *,
        offset: int = 0,
        limit: int = 50,
        name_contains: str | None = None,
        body_contains: tuple[str, ...] = (),
        where: Mapping[str, str] | None = None,
        newest_first: bool = False,
        name: str | None = None,
    ) -> tuple[list[Record], int]:
        """One page of a kind's records and how many match in all, for listings that must not
        load every record (the web UI). Ordered by name, version (``newest_first``: reversed,
        which for runs, whose ids start with their start time, is newest first).
        ``name``: only that name's versions (e.g. the newest runs of one monitor);
        ``name_contains`` matches case-insensitively; each ``body_contains`` string must occur
        in the stored JSON text (e.g. ``'"view": "v"'``, a scan of every body); ``where``:
        top-level fields equal to the given strings, only the indexed ones of the kind
        (:data:`fti.backends.registry.record_facts.FACT_KEYS`, e.g. a run's ``status`` and
        ``pipeline``: an index range), ValidationError for any other."""

    def update(
        self, kind: str, name: str, version: int, body: dict[str, Any], *, revision: int
    ) -> Record:
        """Replace the body if the stored revision is still ``revision``; else ConflictError."""

    def delete(self, kind: str, name: str, version: int) -> None:
        """Remove a record and its events."""

    def add_event(self, kind: str, name: str, version: int, event: dict[str, Any]) -> None:
        """Append to a record's event log."""

    def events(self, kind: str, name: str, version: int) -> list[dict[str, Any]]:
        """A record's events, oldest first."""

    def summary(self, kind: str) -> tuple[int, datetime | None]:
        """How many records of a kind there are and when one last changed (None: no records):
        a cheap fingerprint to know whether something derived from them is still current."""

    def recent_events(
        self, kind: str, *, limit: int = 100
    ) -> list[tuple[str, int, dict[str, Any]]]:
        """The newest ``limit`` events of every record of a kind, newest first:
        ``(name, version, event)`` (the event as :meth:`events` returns it)."""

    def lineage_edges(
        self, nodes: list[NodeKey], *, direction: str, per_node: int | None = None
    ) -> list[EdgeRow]:
        """The stored lineage edges into (``direction="into"``) or out of (``"out_of"``) any of
        ``nodes`` (``(kind, name, version)``; version None for runs and files); ``per_node``:
        only the first that many of each node (runs' edges by run id, then models', then
        datasets'). The registry keeps them from the run, model and training dataset records
        it stores (:mod:`fti.backends.registry.lineage_edges`), written with the record."""

    def lineage_reported(self, links: list[tuple[NodeKey, NodeKey, bool]]) -> list[bool]:
        """For each ``(source, target, any_run)``: did a run report the link -- an edge
        between them, or a run that read ``source`` and wrote ``target``? With ``any_run``:
        did any run write ``target``? (Decides which of a record's edges a walk shows.)"""

    def lineage_latest_version(self, kind: str, name: str) -> int | None:
        """The highest version of an object that any lineage edge mentions."""

    def lineage_names(self, kind: str) -> list[str]:
        """Names (the first 50, sorted) of the objects of a kind in lineage edges."""

    def close(self) -> None:
        """Release connections."""

    def ping(self) -> None:
        """Reach the service (for ``fti doctor``): one cheap request; BackendUnavailableError
        (or the driver's error) if it cannot be reached."""
