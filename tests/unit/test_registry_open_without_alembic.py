"""Opening a registry already at head imports no Alembic (fast ``fti serve`` start, #15.4);
a fresh one is still migrated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from fti.backends.registry.migrations import VERSION_TABLE, head_revision

PROBE = (
    "import sys, fti; fs = fti.connect(sys.argv[1]); fs._ctx.registry; fs.close(); "
    "print('alembic' in sys.modules)"
)


def _opens_with_alembic(root: Path) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.slow
def test_a_registry_at_head_opens_without_importing_alembic(tmp_path: Path) -> None:
    root = tmp_path / "store"
    assert _opens_with_alembic(root)  # fresh: migrated with Alembic
    engine = sa.create_engine(f"sqlite:///{root / 'registry.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT version_num FROM "{VERSION_TABLE}"')).all()
    engine.dispose()
    assert [r[0] for r in rows] == [head_revision()]
    assert not _opens_with_alembic(root)  # at head: one SELECT, no Alembic
