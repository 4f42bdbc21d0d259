"""``FeatureGroup``: the handle returned by ``fs.feature_group(...)``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from fti.definitions.expectations import Expectation
from fti.definitions.feature_group import FeatureGroupSpec, FeaturesArg, normalize_features
from fti.definitions.query import Query, select
from fti.errors import ValidationError
from fti.services import (
    compaction,
    deletion,
    feature_groups,
    ingestion,
    materialization,
    offline_reads,
    profiles,
    record_state,
    row_deletion,
    validation,
)
from fti.services.context import StoreContext
from fti.services.ingestion import InsertReport
from fti.services.online_lookup import OnlineReader
from fti.services.profiles import Statistics

__all__ = ["FeatureGroup"]

_HEAL_WAIT_SECONDS = 300.0


class FeatureGroup:
    """A versioned feature group. Get one with ``fs.feature_group(...)``.

    >>> fg = fs.feature_group("weather", primary_key=["origin"], event_time="time_hour",
    ...                       online=True)                                    # doctest: +SKIP
    >>> fg.insert(df)                                                         # doctest: +SKIP
    >>> fg.read_online([{"origin": "JFK"}])                                   # doctest: +SKIP
    """

    def __init__(self, ctx: StoreContext, spec: FeatureGroupSpec) -> None:
        self._ctx = ctx
        self._spec = spec
        self._reader: OnlineReader | None = None
        self._checked_at = time.monotonic()  # when the definition was last read

    # ------------------------------------------------------------------ properties
    @property
    def spec(self) -> FeatureGroupSpec:
        """The frozen definition."""
        return self._spec

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def version(self) -> int:
        return self._spec.version

    @property
    def primary_key(self) -> list[str]:
        return list(self._spec.primary_key)

    @property
    def event_time(self) -> str | None:
        return self._spec.event_time

    @property
    def schema(self) -> dict[str, str]:
        """Column name -> dtype."""
        return {c.name: c.dtype for c in self._spec.columns}

    def __repr__(self) -> str:
        return (
            f"FeatureGroup({self.name!r}, version={self.version}, primary_key={self.primary_key}, "
            f"event_time={self.event_time!r}, online={self._spec.online})"
        )

    def _set_spec(self, spec: FeatureGroupSpec) -> None:
        if spec != self._spec:
            self._spec = spec
            self._reader = None

    def refresh(self) -> FeatureGroup:
        """Re-read the definition from the registry (e.g. after another process changed it)."""
        self._set_spec(feature_groups.get_spec(self._ctx, self.name, self.version))
        self._checked_at = time.monotonic()
        return self

    # ------------------------------------------------------------------ queries
    def select(self, features: Sequence[str]) -> Query:
        """A query of these columns, to join and build a feature view from.

        >>> q = flights.select(["carrier", "distance"])                       # doctest: +SKIP
        """
        self.refresh()
        return select(self._spec, list(features), exclude=False)

    def select_all(self) -> Query:
        """A query of every feature column (keys and event time come along as entities).

        >>> q = weather.select_all()                                          # doctest: +SKIP
        """
        self.refresh()
        return select(self._spec, None, exclude=False)

    def select_except(self, features: Sequence[str]) -> Query:
        """A query of every feature column but these.

        >>> q = weather.select_except(["wind_gust"])                          # doctest: +SKIP
        """
        self.refresh()
        return select(self._spec, list(features), exclude=True)

    # ------------------------------------------------------------------ writes
    def insert(self, data: Any, *, partial: bool = False) -> InsertReport:
        """Validate and write rows (pandas, polars, pyarrow). Atomic: all rows or none.

        Every feature column must be present (None for a null value). With ``partial=True``
        a frame may leave feature columns out: each row then keeps, for those columns, the
        values of its key's greatest stored row at or before its event time (what a
        point-in-time read gives; null if there is none), and that full row is written.

        >>> fg.insert(pd.DataFrame({"origin": ["JFK"], "time_hour": [now], "temp": [3.5]}))
        ... # doctest: +SKIP
        >>> fg.insert(pd.DataFrame({"origin": ["JFK"], "time_hour": [now], "temp": [3.7]}),
        ...           partial=True)  # the other features keep their stored values
        ... # doctest: +SKIP
        """
        self.refresh()
        report, spec = ingestion.insert(self._ctx, self._spec, data, partial=partial)
        self._set_spec(spec)
        return report

    def stage_online(self, data: pa.Table) -> pa.Table:
        """For stream writers: validate ``data`` and write it to the online store now; the
        returned rows go offline with ``commit_staged`` (one Delta commit for many batches)."""
        staged, _changed, spec = ingestion.stage_online(self._ctx, self._spec, data)
        self._set_spec(spec)
        return staged

    def commit_staged(self, staged: list[pa.Table]) -> InsertReport:
        """Write rows returned by ``stage_online`` offline, in one commit."""
        return ingestion.commit_staged(self._ctx, self._spec, staged)

    @property
    def tags(self) -> dict[str, str]:
        """Free-form labels of this group (``{"owner": "risk-team"}``)."""
        return dict(self._spec.tags)

    def set_tags(self, tags: Mapping[str, str]) -> FeatureGroup:
        """Replace the tags (``{}`` removes them all); other processes see them at once.

        >>> fg.set_tags({"owner": "risk-team", "pii": "no"})                  # doctest: +SKIP
        """
        self._set_spec(feature_groups.set_tags(self._ctx, self._spec, tags))
        return self

    # ------------------------------------------------------------------ data quality
    @property
    def expectations(self) -> list[Expectation]:
        """The rules every write is checked against (``fti.expect.*``)."""
        return list(self._spec.expectations)

    def set_expectations(
        self, expectations: Sequence[Expectation], *, on_invalid: str | None = None
    ) -> FeatureGroup:
        """Replace the rules (and optionally the policy); recorded as a new revision that
        later validation reports carry.

        >>> fg.set_expectations([fti.expect.not_null("temp")], on_invalid="quarantine")
        ... # doctest: +SKIP
        """
        self.refresh()
        self._set_spec(
            feature_groups.set_expectations(self._ctx, self._spec, expectations, on_invalid)
        )
        return self

    def validation_reports(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        format: str = "pandas",
    ) -> Any:
        """Validation history: one row per (insert, rule) with the table version, the rules'
        revision, counts and sample failing rows; ``start <= time < end``.

        >>> fg.validation_reports(start=datetime(2026, 1, 1, tzinfo=UTC))    # doctest: +SKIP
        """
        return validation.reports(self._ctx, self._spec, start=start, end=end, format=format)

    def quarantined(self, *, format: str = "pandas") -> Any:
        """Rows set aside by ``on_invalid="quarantine"``, with the ids of the rules they failed
        (``_fti_rules``), their insert (``_fti_insert_id``) and when (``_fti_quarantined_at``).

        >>> fg.quarantined()                                                  # doctest: +SKIP
        """
        self.refresh()
        return validation.quarantined(self._ctx, self._spec, format=format)

    def add_features(self, features: FeaturesArg) -> FeatureGroup:
        """Add nullable feature columns in place; recorded in the schema history.

        >>> fg.add_features({"wind_gust": "float64"})                          # doctest: +SKIP
        """
        self.refresh()
        self._set_spec(
            feature_groups.add_features(self._ctx, self._spec, normalize_features(features))
        )
        return self

    def delete_rows(self, keys: Sequence[Mapping[str, Any]]) -> int:
        """Delete every row of the given keys offline and online; returns rows deleted."""
        self.refresh()
        return row_deletion.delete_keys(self._ctx, self._spec, list(keys))

    def compact(
        self, *, vacuum: bool = False, retain_versions: int = compaction.DEFAULT_RETAIN_VERSIONS
    ) -> compaction.CompactionReport:
        """Rewrite the offline table's small files into big ones (no rows change; every version
        stays readable). ``vacuum=True`` then deletes files that only versions older than the
        latest ``retain_versions`` need, keeping every version a training dataset recorded.

        >>> fg.compact(vacuum=True, retain_versions=10)                       # doctest: +SKIP
        """
        return compaction.compact(
            self._ctx, self._spec, vacuum=vacuum, retain_versions=retain_versions
        )

    def sync_online(self) -> list[int]:
        """Apply offline versions the online store lacks (done automatically on open)."""
        return materialization.catch_up(self._ctx, self._spec)

    def rebuild_online(self) -> int:
        """Rebuild the online table from the offline table; returns the number of keys."""
        return materialization.rebuild(self._ctx, self._spec)

    # ------------------------------------------------------------------ reads
    def read(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        as_of: datetime | None = None,
        version: int | None = None,
        latest: bool = False,
        include_superseded: bool = False,
        known_at: datetime | None = None,
        format: str = "pandas",
    ) -> Any:
        """Offline rows, ordered by (event time, ingestion order), in one of three modes:

        - default: the *corrected history*, one row per (primary key, event time), the last
          ingested (a re-insert of a key and event time replaces the earlier row); a group
          without an event time has one row per key, the last ingested;
        - ``latest=True``: the current state, one row per primary key, the greatest by (event
          time, ingestion order): the row the online store holds (TTL aside);
        - ``include_superseded=True``: the audit log, every row ever written, with its
          ingestion order (``_fti_seq``) and ``_fti_superseded`` (True if a later row of the
          same key and event time replaced it).

        ``start <= event_time < end`` filters first, then the mode applies (``latest=True,
        end=t`` is the state just before ``t``); ``version=`` or ``as_of=`` read an older
        table version. ``known_at=t`` reads as the store knew it at ``t``: only rows ingested
        at or before ``t`` (``_fti_seq``, UTC ns) count, then the mode applies.

        >>> fg.read(start=datetime(2013, 1, 1, tzinfo=UTC), format="polars")  # doctest: +SKIP
        >>> fg.read(latest=True)                                              # doctest: +SKIP
        """
        return offline_reads.read(
            self._ctx,
            self._spec,
            start=start,
            end=end,
            as_of=as_of,
            version=version,
            latest=latest,
            include_superseded=include_superseded,
            known_at=known_at,
            format=format,
        )

    def read_online(
        self, keys: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, format: str = "rows"
    ) -> Any:
        """Latest row per key, TTL applied.

        Returns a list with one dict per key (None for unknown or expired keys), or a frame with
        ``format="pandas"|"polars"|"arrow"`` (nulls for missing keys).

        >>> fg.read_online([{"origin": "JFK"}, {"origin": "LGA"}])             # doctest: +SKIP
        """
        if time.monotonic() - self._checked_at >= feature_groups.SCHEMA_RECHECK_SECONDS:
            self.refresh()  # another process may have added columns meanwhile
        if self._reader is None:
            if not self._spec.online:
                raise ValidationError(
                    f"Feature group {self.name!r} version {self.version} is not online. Create "
                    "it with online=True, or read offline with fg.read()."
                )
            self.refresh()
            # A library call may block while a lost online table is restored.
            self._reader = OnlineReader(self._ctx, self._spec, heal_wait=_HEAL_WAIT_SECONDS)
        entities = [keys] if isinstance(keys, Mapping) else keys
        if format == "rows":
            return self._reader.rows(entities)
        return self._reader.frame(entities, format)

    def stats(self) -> dict[str, Any]:
        """Offline rows written (``rows``, superseded ones included), corrected-history rows
        (``history_rows``) and current rows (``current_rows``, one per key), files, latest
        version and commit; online key count."""
        out: dict[str, Any] = {"online_rows": None}
        if self._ctx.offline.exists(self._spec.key):
            s = self._ctx.offline.stats(self._spec.key)
            out.update(
                offline_version=s.version,
                rows=s.rows,
                files=s.files,
                size_bytes=s.size_bytes,
                last_commit=s.last_commit,
                last_operation=s.last_operation,
            )
            counts = offline_reads.counts(self._ctx, self._spec)
            out.update(history_rows=counts["history_rows"], current_rows=counts["current_rows"])
        else:
            out.update(
                offline_version=None,
                rows=0,
                files=0,
                size_bytes=0,
                last_commit=None,
                last_operation=None,
                history_rows=0,
                current_rows=0,
            )
        if self._spec.online and self._spec.has_schema:
            out["online_rows"] = self._ctx.online.count(feature_groups.online_table(self._spec))
        return out

    def statistics(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        version: int | None = None,
        features: Sequence[str] | None = None,
    ) -> Statistics:
        """Statistics of the rows written, merged from per-commit profiles (no rescan).

        ``start``/``end``: an event-time window ``[start, end)``, rounded out to whole UTC days
        (``result.rounded`` says so); ``version``: the table as of that table version (an
        insert report's ``offline_version``); ``features``: only these columns.

        >>> s = fg.statistics(start=datetime(2024, 1, 1, tzinfo=timezone.utc))  # doctest: +SKIP
        >>> s["amount"]["mean"], s["amount"]["quantiles"]["p50"]                # doctest: +SKIP
        """
        return profiles.statistics(
            self._ctx,
            self._spec,
            start=start,
            end=end,
            version=version,
            features=None if features is None else list(features),
        )

    def schema_history(self) -> list[dict[str, Any]]:
        """Every schema change, oldest first."""
        return self._ctx.registry.events(feature_groups.KIND, self.name, self.version)

    # ------------------------------------------------------------------ lifecycle
    @property
    def deprecated(self) -> bool:
        """Whether this version is deprecated (read from the registry)."""
        return record_state.is_deprecated(self._ctx, feature_groups.KIND, self.name, self.version)

    def deprecate(self, deprecated: bool = True, *, reason: str = "") -> FeatureGroup:
        """Mark this version deprecated: kept and working, hidden from ``fs.feature_groups()``
        (``include_deprecated=True`` shows it), a ``DeprecatedWarning`` when opened.
        ``deprecate(False)`` undoes it.

        >>> fs.get_feature_group("weather", version=1).deprecate(reason="use v2")  # doctest: +SKIP
        """
        record_state.set_deprecated(
            self._ctx, feature_groups.KIND, self.name, self.version, deprecated, reason
        )
        return self

    def delete(self, *, force: bool = False) -> list[str]:
        """Delete this version: offline table, online rows, registry records. Refused
        (``DependantsError`` listing them) while feature views, training datasets, models or
        aliases depend on it, unless ``force=True``, which deletes those too. Returns what was
        deleted.

        >>> fs.get_feature_group("weather", version=1).delete()              # doctest: +SKIP
        """
        return deletion.delete(
            self._ctx, deletion.feature_group(self.name, self.version), force=force
        )
