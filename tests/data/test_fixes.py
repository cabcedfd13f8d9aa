"""The fix overlay: record, undo, replay a prefix, apply to a dataset, survive restarts and concurrent writers."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from core.data import fixes, identity

from core.store import runs
from core.analysis.compare import changes, compare
from core.train.trainer import TrainConfig, train


@pytest.fixture
def small(mnist, slice_dataset):
    return slice_dataset(mnist, 300, 100)


@pytest.mark.quick
def test_relabel_exclude_add_and_undo(runs_dir, small):
    original = small.y_train.copy()
    ov = fixes.Overlay("mnist", runs_dir)
    a = ov.record("relabel", "train", 5, 3, "3", view="mistakes")
    b = ov.record("exclude", "train", 7, view="label errors")
    c = ov.record("relabel", "test", 2, 9, "9", view="mistakes")
    d = ov.add_image(np.full((28, 28), 200, np.uint8), 4, "4", view="predict")
    assert (ov.dir / d.file).is_file() and d.file.startswith("mnist/")
    prep = fixes.apply(small, ov)
    ds = prep.dataset
    assert len(ds.y_train) == 300 - 1 + 1 and ds.y_train[-1] == 4 and ds.x_train[-1].max() == 200
    assert prep.train_keys[5] == "5" and ds.y_train[5] == 3 and "7" not in set(prep.train_keys)
    assert prep.train_keys[-1] == d.file and ds.y_test[2] == 9 and prep.test_keep.all()
    assert np.array_equal(small.y_train, original) and not small.y_train.flags.writeable  # originals untouched
    assert prep.version["fixes"] == {**prep.version["fixes"], "lines": 4, "applied": 4, "skipped": 0}

    ov.undo(b.id)
    active, undone = ov.state()
    assert [f.id for f in active] == [a.id, c.id, d.id] and [f.id for f in undone] == [b.id]
    assert "7" in set(fixes.apply(small, ov).train_keys)
    with pytest.raises(ValueError):
        ov.undo(b.id)  # already undone
    # the log is a history: a replay of its first 4 lines is the version before the undo, exactly
    assert "7" not in set(fixes.apply(small, ov, upto=4).train_keys)
    assert fixes.apply(small, ov, upto=4).version["fixes"]["hash"] == prep.version["fixes"]["hash"]


def test_bad_fixes_and_torn_lines_are_refused_or_skipped(runs_dir, small):
    ov = fixes.Overlay("mnist", runs_dir)
    with pytest.raises(ValueError):
        ov.record("relabel", "train", 1, None)
    with pytest.raises(ValueError):
        ov.record("add", "test", None, 1, file="x.png")
    with pytest.raises(ValueError):
        fixes.Overlay("../etc", runs_dir)
    ov.record("exclude", "test", 3)
    ov.record("relabel", "train", 10_000, 1)  # an item this dataset does not have: skipped, counted
    with open(ov.path, "ab") as f:
        f.write(b'not json\n{"fix": {"id": "half"')  # a hand edit, then a write cut off by a crash
    prep = fixes.apply(small, ov)
    assert prep.version["fixes"]["skipped"] == 1 and not prep.test_keep[3] and prep.test_keep.sum() == 99


def test_fixes_survive_a_restart(runs_dir):
    """Written by another process (a server that then stops); a new process reads every fix back."""
    code = ("from core.data import fixes; ov = fixes.Overlay('mnist'); ov.record('relabel', 'train', 1, 2); "
            "f = ov.record('exclude', 'train', 3); ov.undo(f.id)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=runs.ROOT,
                   env={**__import__("os").environ, "CLASSIFIER_LAB_RUNS": str(runs_dir)})
    active, undone = fixes.Overlay("mnist", runs_dir).state()
    assert [(f.op, f.key) for f in active] == [("relabel", 1)] and [(f.op, f.key) for f in undone] == [("exclude", 3)]


def test_two_sessions_writing_at_once_lose_nothing(runs_dir):
    """Threads of one server and two separate processes append 4 × 100 fixes to the same dataset at once."""
    code = ("import sys; from core.data import fixes; ov = fixes.Overlay('mnist'); "
            "[ov.record('relabel', 'train', int(sys.argv[1]) * 1000 + i, i % 10) for i in range(100)]")
    env = {**__import__("os").environ, "CLASSIFIER_LAB_RUNS": str(runs_dir)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p)], cwd=runs.ROOT, env=env) for p in (1, 2)]
    ov = fixes.Overlay("mnist", runs_dir)
    threads = [threading.Thread(target=lambda t=t: [ov.record("exclude", "train", t * 1000 + i) for i in range(100)])
               for t in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.wait(timeout=120) == 0 for p in procs)
    lines = ov.path.read_bytes().splitlines()
    assert len(lines) == 400 and all(json.loads(line)["fix"] for line in lines)
    keys = sorted(f.key for f in ov.state()[0])
    assert keys == sorted(p * 1000 + i for p in (1, 2, 3, 4) for i in range(100))


def test_a_run_with_fixes_records_its_version_and_compare_shows_the_label_fix(runs_dir, small):
    """Relabel a test image the model gets wrong; a run with fixes records the overlay; compare counts it fixed."""
    cfg = dict(dataset="mnist", arch="dense", epochs=1, batch_size=32, runs_dir=str(runs_dir))
    before = train(TrainConfig(**cfg), dataset=small)
    probs_a = np.load(before.path / "test_probs.npy")
    wrong = int(np.flatnonzero(probs_a.argmax(1) != small.y_test)[0])
    ov = fixes.Overlay("mnist", runs_dir)
    ov.record("relabel", "test", wrong, int(probs_a[wrong].argmax()), view="mistakes")
    after = train(TrainConfig(**cfg, fixes=True), dataset=small)
    assert before.meta["data_version"] == {"base": fixes.base_hash(small), "fixes": None}
    assert before.meta["split"] == after.meta["split"] == identity.split_version(small)
    assert after.meta["data_version"]["fixes"]["lines"] == 1 and after.meta["data_version"]["base"] == fixes.base_hash(small)
    result = compare(small, before.meta, probs_a, after.meta, np.load(after.path / "test_probs.npy"), runs_dir)
    assert result["relabelled"].tolist() == [wrong]
    row = next(r for r in changes(result, "fixed", small.class_names) if r["test index"] == wrong)
    assert row["how"] == "label fixed" and row["label after"] == row["predicted before"]
    assert result["confusion_diff"].sum() == 0 and result["confusion"][0].sum() == 100
    assert result["split_warning"] is None  # both tested on the same images
