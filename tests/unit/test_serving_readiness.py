"""``Readiness``: named checks, failures in order with their reasons, results kept for
``max_age`` seconds unless invalidated."""

from __future__ import annotations

import pytest

from fti.serving.readiness import Failure, Readiness


def test_failures_list_each_failing_check_in_order() -> None:
    r = Readiness(max_age=0)
    r.add("first", lambda: "first is down")
    r.add("fine", lambda: None)
    r.add("third", lambda: "third is down")
    assert r.failures() == [Failure("first", "first is down"), Failure("third", "third is down")]
    assert r.failures()[0].to_dict() == {"check": "first", "reason": "first is down"}


def test_a_check_that_raises_is_a_reason_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> str | None:
        raise RuntimeError("/secret/path")

    r = Readiness(max_age=0)
    r.add("broken", broken)
    [failure] = r.failures()
    assert failure.check == "broken"
    assert "RuntimeError" in failure.reason
    assert "/secret/path" not in failure.reason
    assert "/secret/path" in caplog.text  # the server log has it


def test_results_are_kept_until_max_age_or_invalidate() -> None:
    state = {"reason": None, "runs": 0}

    def check() -> str | None:
        state["runs"] += 1  # type: ignore[operator]
        return state["reason"]  # type: ignore[return-value]

    r = Readiness(max_age=3600)
    r.add("c", check)
    assert r.failures() == []
    state["reason"] = "down"
    assert r.failures() == []  # kept
    assert state["runs"] == 1
    r.invalidate()
    assert r.failures() == [Failure("c", "down")]
    assert state["runs"] == 2
    r.max_age = 0
    state["reason"] = None
    assert r.failures() == []
    assert state["runs"] == 3
