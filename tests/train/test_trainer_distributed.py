"""Scale-out training: MirroredStrategy over two logical CPU devices (the multi-GPU code path)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from core.train.trainer import TrainConfig, train
run = train(TrainConfig(dataset="mnist", arch="dense", epochs=2, max_train_samples=2000, distribute=True,
                        runs_dir=sys.argv[1]))
print(json.dumps({k: run.meta.get(k) for k in ("status", "devices", "test_accuracy", "epochs_done")}))
"""


@pytest.mark.quick
def test_mirrored_strategy_trains_on_two_logical_devices(tmp_path):
    # A subprocess: logical devices must be configured before TensorFlow initialises them.
    env = {**os.environ, "CLASSIFIER_LAB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["epochs_done"] == 2
    assert len(result["devices"]) == 2 and all("CPU" in d for d in result["devices"])
    assert result["test_accuracy"] > 0.8
