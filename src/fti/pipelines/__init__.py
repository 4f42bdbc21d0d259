"""Pipelines: plain typed functions marked as feature, training or inference pipelines, run
and recorded with their parameters, code version and lineage; monolithic runs, backfills and
cron schedules.

This package sits between the CLI and the ``FeatureStore`` facade: it may import the store,
the store never imports it.
"""

from fti.pipelines.backfill import backfill
from fti.pipelines.decorators import (
    Pipeline,
    feature_pipeline,
    inference_pipeline,
    training_pipeline,
)
from fti.pipelines.monolithic import run_monolithic
from fti.pipelines.runner import run_pipeline
from fti.pipelines.runs import PipelineRun

__all__ = [
    "Pipeline",
    "PipelineRun",
    "backfill",
    "feature_pipeline",
    "inference_pipeline",
    "run_monolithic",
    "run_pipeline",
    "training_pipeline",
]
