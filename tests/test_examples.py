"""examples/train_torch.py runs for a few steps (skipped when torch is not installed: not a dependency)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest

import seqprep
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")

SCRIPT = ROOT / "examples" / "train_torch.py"
SAMPLE = ROOT / "sample_data" / "ratings.csv"


def _losses(stderr: str) -> list[float]:
    return [float(x) for x in re.findall(r"loss (\S+)", stderr)]


def test_train_torch_on_a_folder(tmp_path):
    res = seqprep.build(SAMPLE, tmp_path / "out")
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "out"), "--steps", "4"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["num_embeddings"] == res.meta["num_embeddings"]
    losses = _losses(r.stderr)
    assert len(losses) == 4 and losses[-1] < losses[0]  # it learns


def test_train_torch_from_a_pipe():
    build = subprocess.Popen(
        [sys.executable, "-m", "seqprep", "build", str(SAMPLE), "-o", "-", "-q"], stdout=subprocess.PIPE
    )
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "-", "--steps", "2"],
        stdin=build.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    build.stdout.close()
    assert build.wait() == 0
    assert r.returncode == 0, r.stderr
    assert len(_losses(r.stderr)) == 2
    assert json.loads(r.stdout)["num_embeddings"] == seqprep.build(SAMPLE, None).meta["num_embeddings"]


def test_train_torch_with_feature_embeddings(tmp_path):
    """--features: one embedding per cat feature, each sized from meta.json (the SASRec-F pattern)."""
    res = seqprep.build(SAMPLE, tmp_path / "out", time_features=("hour", "weekday", "delta"))
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "out"), "--steps", "4", "--features"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    feats = res.meta["features"]
    assert out["features"] == {name: feats[name]["num_embeddings"] for name in ("hour", "weekday")}  # delta is num
    losses = _losses(r.stderr)
    assert len(losses) == 4 and losses[-1] < losses[0]


def test_train_torch_with_features_from_a_pipe():
    build = subprocess.Popen(
        [sys.executable, "-m", "seqprep", "build", str(SAMPLE), "-o", "-", "-q", "--time-feature", "hour"],
        stdout=subprocess.PIPE,
    )
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "-", "--steps", "2", "--features", "hour"],
        stdin=build.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    build.stdout.close()
    assert build.wait() == 0
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)["features"]) == {"hour"}


def test_train_torch_refuses_a_feature_the_build_lacks(tmp_path):
    seqprep.build(SAMPLE, tmp_path / "out", time_features=("delta",))
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "out"), "--steps", "1", "--features", "delta"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode != 0 and "--features delta: not a cat feature of this build (its cat features: none)" in r.stderr
