"""Reading an Optuna SQLite study file from a test without ever writing to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def schema_state(db: Path) -> str:
    """'absent', 'unfinished' or 'finished': whether Optuna's schema in ``db`` is built and
    stamped, read through a read-only connection (a reader that built or stamped the schema
    itself would race the driver that does)."""
    if not db.exists():
        return "absent"
    con = sqlite3.connect(db.as_uri() + "?mode=ro", uri=True, timeout=5)
    try:
        stamped = con.execute("SELECT COUNT(*) FROM alembic_version").fetchone()[0]
        versioned = con.execute("SELECT COUNT(*) FROM version_info").fetchone()[0]
    except sqlite3.OperationalError:  # no such table (yet)
        return "unfinished"
    finally:
        con.close()
    return "finished" if stamped and versioned else "unfinished"
