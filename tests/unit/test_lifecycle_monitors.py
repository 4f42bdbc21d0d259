"""Deleting what a monitor watches: monitors are dependants (listed, deleted with force=True,
their schedule and runs too), and the last live version of a model takes the model's outcomes
group and its model-wide monitors."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

import fti
from fti.errors import DependantsError
from fti.pipelines.scheduler import list_schedules
from fti.store import context_of
from lifecycle_world import T0, build

pytest.importorskip("sklearn")

WINDOW = {"reference": fti.window(end=T0 + timedelta(minutes=20))}
DETECT = fti.window(start=T0 + timedelta(minutes=20))


def _monitors(fs: fti.FeatureStore, w: object) -> None:
    fs.monitor("on_group", feature_group=w.flights, features=["distance"],  # type: ignore[attr-defined]
               detection=DETECT, schedule="0 * * * *", **WINDOW)  # fmt: skip
    fs.monitor("on_view", feature_view=w.fv, features=["distance"], detection=DETECT,  # type: ignore[attr-defined]
               **WINDOW)  # fmt: skip
    fs.monitor("on_td", feature_view=w.fv, features=["distance"], detection=DETECT,  # type: ignore[attr-defined]
               reference=w.td)  # type: ignore[attr-defined]  # fmt: skip
    fs.monitor("skew_all", model="delays", metric="skew", detection=DETECT)
    fs.monitor("skew_v1", model=w.mv, metric="skew", detection=DETECT)  # type: ignore[attr-defined]


def _log_outcomes(fs: fti.FeatureStore, prefix: str = "r") -> None:
    ids = [f"{prefix}{i}" for i in range(5)]
    at = [T0 + timedelta(hours=1)] * 5
    fs.models.log_predictions(
        "delays",
        pd.DataFrame({"id": range(5), "prediction": [1] * 5, "logged_at": at, "request_id": ids}),
        keys=["id"],
    )
    fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ids, "delayed": [0] * 5}))


def test_monitors_are_dependants_and_force_deletes_them(fs: fti.FeatureStore) -> None:
    w = build(fs)
    _monitors(fs, w)
    ctx = context_of(fs)
    fs.monitor("on_group").run()
    assert [s.name for s in list_schedules(fs)] == ["monitor_on_group"]

    with pytest.raises(DependantsError) as info:
        w.td.delete()
    assert "monitor 'on_td'" in info.value.dependants
    assert "monitor 'on_view'" not in info.value.dependants
    with pytest.raises(DependantsError) as info:
        w.fv.delete()
    assert {"monitor 'on_view'", "monitor 'on_td'"} <= set(info.value.dependants)
    assert "monitor 'on_group'" not in info.value.dependants
    with pytest.raises(DependantsError) as info:
        fs.delete_feature_group("flights", version=1)
    assert {"monitor 'on_group'", "monitor 'on_view'", "monitor 'on_td'"} <= set(
        info.value.dependants
    )
    assert "Delete them first, or pass force=True" in str(info.value)
    assert len(fs.monitors()) == 5  # refused: nothing deleted

    deleted = fs.delete_feature_group("flights", version=1, force=True)
    assert "monitor 'on_group'" in deleted
    assert "monitor 'on_td'" in deleted
    # the model (last live version) went too, and with it the model's skew monitors
    assert {"monitor 'skew_all'", "monitor 'skew_v1'"} <= set(deleted)
    assert fs.monitors() == []
    assert list_schedules(fs) == []  # the monitor's schedule is gone
    assert ctx.registry.records("monitor_run") == []  # and its runs
    # a dependant comes before what it depends on
    assert deleted.index("monitor 'on_td'") < deleted.index(
        "training dataset version 1 of feature view 'delays' version 1"
    )
    assert deleted[-1] == "feature group 'flights' version 1"


def test_the_last_model_version_takes_its_outcomes_and_model_monitors(
    fs: fti.FeatureStore,
) -> None:
    w = build(fs)
    _monitors(fs, w)
    _log_outcomes(fs)
    assert fs.get_feature_group("delays_outcomes", version=1).read().shape[0] == 5
    x, y = w.td.read("train")
    from sklearn.linear_model import LogisticRegression

    v2 = fs.models.register("delays", LogisticRegression().fit(x, y), training_dataset=w.td)
    fs.models.remove_alias("delays", "production")

    # v1 is not the last live version: only the monitor pinned to it depends on it
    with pytest.raises(DependantsError) as info:
        w.mv.delete()
    assert info.value.dependants == ["monitor 'skew_v1'"]
    assert w.mv.delete(force=True) == ["monitor 'skew_v1'", "model 'delays' version 1"]
    assert fs.get_feature_group("delays_outcomes", version=1) is not None

    # v2 is: the outcomes group and the model-wide monitor depend on it
    with pytest.raises(DependantsError) as info:
        v2.delete()
    assert set(info.value.dependants) == {
        "monitor 'skew_all'",
        "feature group 'delays_outcomes' version 1",
    }
    deleted = v2.delete(force=True)
    assert deleted[-1] == "model 'delays' version 2"
    assert "feature group 'delays_outcomes' version 1" in deleted
    with pytest.raises(fti.NotFoundError):
        fs.get_feature_group("delays_outcomes", version=1)
    assert sorted(m.name for m in fs.monitors()) == ["on_group", "on_td", "on_view"]
    # the names are free again: a new model of that name starts without outcomes
    fs.models.register("delays", LogisticRegression().fit(x, y), training_dataset=w.td)
    _log_outcomes(fs, "again")
    assert fs.get_feature_group("delays_outcomes", version=1).read().shape[0] == 5
