"""No module under src/ is longer than 600 lines: past that, split it by concept (STYLE.md)."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
LIMIT = 600


def _line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def test_no_module_exceeds_600_lines() -> None:
    modules = sorted(SRC.rglob("*.py"))
    assert len(modules) > 100, f"found only {len(modules)} modules under {SRC}"
    too_long = {
        path.relative_to(SRC).as_posix(): n for path in modules if (n := _line_count(path)) > LIMIT
    }
    assert too_long == {}, (
        f"Modules over {LIMIT} lines: split each by concept into a package or sibling modules."
    )
