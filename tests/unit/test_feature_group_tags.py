"""Feature group tags: set on creation or with fg.set_tags, stored in the registry, checked."""

from __future__ import annotations

from pathlib import Path

import pytest

import fti
from fti.errors import ConflictError, ValidationError


def test_tags_are_stored_changed_and_seen_by_other_processes(tmp_path: Path) -> None:
    fs = fti.connect(tmp_path)
    fg = fs.feature_group("tx", primary_key=["id"], tags={"owner": "risk", "pii": "yes"})
    assert fg.tags == {"owner": "risk", "pii": "yes"}
    # The same tags again is the same group; different ones are a conflict naming the fix.
    assert fs.feature_group("tx", tags={"pii": "yes", "owner": "risk"}).tags == fg.tags
    with pytest.raises(ConflictError, match=r"fg\.set_tags"):
        fs.feature_group("tx", tags={"owner": "someone else"})
    fg.set_tags({"owner": "fraud", "tier": 1})
    other = fti.connect(tmp_path)
    assert other.get_feature_group("tx").tags == {"owner": "fraud", "tier": "1"}
    fg.set_tags({})
    assert fti.connect(tmp_path).get_feature_group("tx").tags == {}
    # Groups created before tags existed (no "tags" key in the record) read as untagged.
    assert fs.feature_group("old", primary_key=["id"]).tags == {}


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"": "x"}, "Tag key ''"),
        ({"k" * 65: "x"}, "1-64 characters"),
        ({"owner": "x" * 257}, "at most 256"),
        ({"owner": ["a"]}, "use a string"),
        (["owner"], "must be a dict"),
    ],
)
def test_bad_tags_are_refused_and_nothing_is_written(
    tmp_path: Path, tags: object, message: str
) -> None:
    fs = fti.connect(tmp_path)
    with pytest.raises(ValidationError, match=message):
        fs.feature_group("tx", primary_key=["id"], tags=tags)  # type: ignore[arg-type]
    assert fs.feature_groups() == []
    fg = fs.feature_group("tx", primary_key=["id"], tags={"owner": "risk"})
    with pytest.raises(ValidationError, match=message):
        fg.set_tags(tags)  # type: ignore[arg-type]
    assert fti.connect(tmp_path).get_feature_group("tx").tags == {"owner": "risk"}
