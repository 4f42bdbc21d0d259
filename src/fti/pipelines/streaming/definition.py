"""What a streaming feature pipeline is: the declaration the runtime and the backfill read.

``StreamPipeline`` (in ``pipeline``) adds the verbs on top, so this module, ``runtime`` and
``batch`` never import the module that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fti.definitions.aggregations import WindowSpec
from fti.definitions.feature_group import normalize_features
from fti.errors import ValidationError
from fti.handles import feature_group as handle
from fti.pipelines.streaming.aggregation.decoding import Transform, prepare_batch, prepare_event
from fti.pipelines.streaming.aggregation.events import Event, EventBatch
from fti.services import feature_groups
from fti.store import context_of

if TYPE_CHECKING:
    from fti.backends.streams import StreamSource
    from fti.handles.feature_group import FeatureGroup
    from fti.store import FeatureStore

__all__ = ["StreamDefinition"]


@dataclass
class StreamDefinition:
    """What a streaming feature pipeline is: its name, window spec, source, row-level
    transformation and options, and the two feature groups it writes. ``StreamPipeline`` adds
    the verbs (``run``, ``backfill``, ``aggregates_at``)."""

    name: str
    spec: WindowSpec
    version: int = 1
    source: StreamSource | Callable[[], StreamSource] | None = None
    transform: Transform | None = None
    online: bool = True
    ttl: timedelta | None = None
    description: str = ""
    batch_size: int = 5_000
    max_delay: timedelta = timedelta(milliseconds=100)
    checkpoint_interval: timedelta = timedelta(seconds=1)

    @property
    def checkpoint_name(self) -> str:
        """The registry record of this pipeline version's progress."""
        return f"{self.name}_v{self.version}"

    @property
    def events_name(self) -> str:
        """The feature group holding the deduplicated raw events (the replay log)."""
        return f"{self.name}_events"

    def feature_group(self, fs: FeatureStore) -> FeatureGroup:
        """The aggregate feature group (created on first use)."""
        return fs.feature_group(
            self.name,
            version=self.version,
            primary_key=list(self.spec.keys),
            event_time=self.spec.event_time,
            online=self.online,
            ttl=self.ttl,
            description=self.description or f"streaming aggregates of {self.name}",
            features={
                **{k: self.spec.columns[k] for k in self.spec.keys},
                self.spec.event_time: "timestamp",
                **self.spec.feature_dtypes(),
            },
        )

    def events_group(self, fs: FeatureStore) -> FeatureGroup:
        """The offline feature group of accepted events, keyed by event id (a name fti
        generates: users cannot create groups ending in ``_events``)."""
        s = self.spec
        ctx = context_of(fs)
        spec = feature_groups.get_or_create(
            ctx,
            self.events_name,
            version=self.version,
            primary_key=[s.event_id],
            event_time=s.event_time,
            online=False,
            ttl=feature_groups._UNSET,
            description=f"deduplicated events consumed by stream pipeline {self.name}",
            features=normalize_features(
                {
                    s.event_id: s.columns[s.event_id],
                    **{k: s.columns[k] for k in s.keys},
                    s.event_time: "timestamp",
                    **{c: s.columns[c] for c in s.value_columns},
                }
            ),
            generated=True,
        )
        return handle.FeatureGroup(ctx, spec)

    def prepare(self, fields: Mapping[str, Any]) -> Event | None:
        """Apply the row-level transformation, then decode; None if the transform drops it."""
        return prepare_event(self.spec, self.transform, fields)

    def prepare_batch(self, records: Sequence[Mapping[str, Any]]) -> tuple[EventBatch, int]:
        """``prepare`` for many records: (the decoded events, how many were invalid). Columnar
        when every value decodes that way, else record by record."""
        return prepare_batch(self.spec, self.transform, records)

    def open_source(self) -> StreamSource:
        """The source to consume (a factory passed as ``source=`` is called once per run)."""
        if self.source is None:
            raise ValidationError(
                f"Stream pipeline {self.name!r} has no source. Pass source= to "
                "@fti.stream_pipeline or to run()."
            )
        return self.source() if callable(self.source) else self.source
