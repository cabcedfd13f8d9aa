"""The live feed: batched publishing, incremental reading, the stop file; and a real training's feed."""
from __future__ import annotations

import json
import threading

import pytest

from core.engine import feed
from core.engine.feed import FeedReader, FileSink, Publisher


def test_batches_leave_in_few_lines_and_read_back_whole(tmp_path):
    lines = []
    pub = Publisher(lambda line: lines.append(line) or False, every_s=3600)
    pub.update(status="training", epochs_total=2)  # a new status goes out at once
    for step in range(1, 101):
        pub.add_batch(step, 1.0 / step, step / 100, batch=step, samples_per_s=500.0)
    pub.add_epoch({"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": float("nan"), "val_accuracy": 0.8})
    pub.add_batch(101, 0.01, 1.0, batch=1)
    assert len(lines) == 2  # the status, then everything up to the epoch row
    pub.close()
    assert len(lines) == 3
    feed.append_lines(tmp_path / feed.FEED_FILE, lines)
    snap = FeedReader(tmp_path).snapshot()
    mem = pub.snapshot()
    assert snap["steps"] == mem["steps"] and snap["loss"] == mem["loss"] and snap["accuracy"] == mem["accuracy"]
    assert snap["n_batches"] == 101 and snap["batch"] == 1 and snap["status"] == "training"
    assert snap["epochs"][0]["val_accuracy"] == 0.8 and snap["epochs"][0]["val_loss"] != snap["epochs"][0]["val_loss"]


def test_flushes_at_most_every_interval():
    import time

    lines = []
    pub = Publisher(lambda line: lines.append(line) or False, every_s=0.05)
    t0 = time.monotonic()
    for i in range(2000):
        pub.add_batch(i + 1, 0.1, 0.5)
        if i % 100 == 0:
            time.sleep(0.01)
    elapsed = time.monotonic() - t0
    assert 1 <= len(lines) <= elapsed / 0.05 + 1  # never more than one line per interval
    assert sum(len(json.loads(x)["b"]) for x in lines) + len(pub._pending["b"]) == 2000  # none lost


def test_reader_is_incremental_and_skips_half_and_damaged_lines(tmp_path):
    path = tmp_path / feed.FEED_FILE
    reader = FeedReader(tmp_path)
    assert reader.snapshot()["n_batches"] == 0  # no file yet
    path.write_text('{"b": [[1, 0.5, 0.1]]}\nnot json\n{"b": [[2, 0.4')
    assert reader.snapshot()["steps"] == [1]  # the damaged line is skipped, the half one waits
    with open(path, "a") as f:
        f.write(', 0.2]], "s": {"status": "training"}}\n')
    snap = reader.snapshot(since=1)
    assert snap["steps"] == [2] and snap["n_batches"] == 2 and snap["status"] == "training"


def test_reader_starts_over_when_the_file_is_replaced(tmp_path):
    path = tmp_path / feed.FEED_FILE
    path.write_text('{"b": [[1, 0.5, 0.1], [2, 0.4, 0.2]]}\n')
    reader = FeedReader(tmp_path)
    assert reader.snapshot()["n_batches"] == 2
    path.write_text('{"b": [[1, 0.9, 0.0]]}\n')
    assert reader.snapshot()["loss"] == [0.9]


def test_stop_file_reaches_the_publisher(tmp_path):
    pub = Publisher(FileSink(tmp_path), every_s=0)
    pub.add_batch(1, 0.5, 0.5)
    assert not pub.stop.is_set() and not feed.stop_requested(tmp_path)
    feed.request_stop(tmp_path)
    pub.add_batch(2, 0.5, 0.5)
    assert pub.stop.is_set()


@pytest.mark.quick
def test_a_real_training_feeds_its_curves(tmp_path, mnist_small):
    from core.train.trainer import TrainConfig, train

    pub = Publisher(FileSink(tmp_path / "feedonly"))
    (tmp_path / "feedonly").mkdir()
    run = train(TrainConfig(arch="dense", epochs=2, batch_size=32, max_train_samples=640, runs_dir=str(tmp_path)),
                store=pub, stop=pub.stop, dataset=mnist_small)
    pub.close()
    snap = FeedReader(tmp_path / "feedonly").snapshot()
    assert snap["status"] == "finished" and snap["run_id"] == run.id
    assert snap["n_batches"] == 2 * 18 and snap["steps"] == list(range(1, 37))
    assert [e["epoch"] for e in snap["epochs"]] == [1, 2]
    assert snap["test_accuracy"] == run.meta["test_accuracy"]


def test_readers_in_threads_see_a_growing_feed(tmp_path):
    pub = Publisher(lambda line: feed.append_lines(tmp_path / feed.FEED_FILE, [line]) or False, every_s=0)
    reader, seen, done = FeedReader(tmp_path), [], threading.Event()

    def watch():
        while not done.is_set():
            seen.append(reader.snapshot()["n_batches"])

    t = threading.Thread(target=watch)
    t.start()
    for i in range(500):
        pub.add_batch(i + 1, 0.1, 0.2)
    done.set()
    t.join()
    assert seen == sorted(seen) and reader.snapshot()["n_batches"] == 500
