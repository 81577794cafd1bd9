"""The sweep's Optuna study file: whoever sees ``optuna.db`` sees a finished schema.

A reader that opens the file while the driver is still building Optuna's tables stamps the
schema version too, and one of the two fails (``UNIQUE constraint failed:
alembic_version.version_num``): the driver builds the schema aside and links it into place.
"""

from __future__ import annotations

import threading
from pathlib import Path

from _study_files import schema_state

from search.experiment import load_experiment
from search.sweep import open_study


def test_a_new_study_file_appears_with_its_schema_finished(tmp_path: Path) -> None:
    for k in range(4):
        out = tmp_path / f"sweep{k}"
        out.mkdir()
        db = out / "optuna.db"
        seen: set[str] = set()
        done = threading.Event()

        def watch(db: Path = db, seen: set[str] = seen, done: threading.Event = done) -> None:
            while not done.is_set():
                seen.add(schema_state(db))
            seen.add(schema_state(db))

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            study = open_study(load_experiment("smoke", [f"output_dir={out}"]))
        finally:
            done.set()
            watcher.join()
        assert "unfinished" not in seen, "a reader saw optuna.db before its schema was built"
        assert "finished" in seen
        assert study.metric_names == ["val_accuracy", "flops"]
        assert sorted(p.name for p in out.iterdir()) == ["optuna.db"]  # no temporary file left


def test_an_existing_study_file_is_opened_in_place(tmp_path: Path) -> None:
    exp = load_experiment("smoke", [f"output_dir={tmp_path}"])
    first = open_study(exp)
    first.set_user_attr("marker", 1)
    inode = (tmp_path / "optuna.db").stat().st_ino
    again = open_study(exp)
    assert again.user_attrs["marker"] == 1
    assert (tmp_path / "optuna.db").stat().st_ino == inode
