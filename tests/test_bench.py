"""`vrgv bench` and the GPU script: every stage is measured and reported, on a tiny exported bundle."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vrgv.bench import BenchReport, StageStats, machine_info, random_attention, random_boxes, time_call

ROOT = Path(__file__).resolve().parents[1]


def test_stage_stats_percentiles_are_in_milliseconds():
    s = StageStats.from_samples("x", "b", [0.001] * 98 + [0.002, 0.010])
    assert s.n == 100 and s.median_ms == pytest.approx(1.0)
    assert s.p90_ms == pytest.approx(1.0) and 1.0 < s.p99_ms <= 10.0
    assert s.mean_ms == pytest.approx((98 * 1 + 2 + 10) / 100)


def test_time_call_runs_warmup_then_repeats():
    calls = []
    secs = time_call(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and len(secs) == 4 and all(s >= 0 for s in secs)


def test_random_inputs_look_like_encoder_outputs():
    rng = np.random.default_rng(0)
    a_s, a_o, b1, b2 = random_attention(rng, 3, 24, 5, clip_len=12)
    assert a_s.shape == (3, 24, 5) and b2.shape == (3, 2)
    np.testing.assert_allclose(a_s.sum(-1), 1.0)
    np.testing.assert_allclose(b1.sum(-1), 1.0)
    boxes = random_boxes(rng, 24, 5)
    assert np.all(boxes[..., 2] > boxes[..., 0]) and np.all(boxes[..., 3] > boxes[..., 1])
    assert boxes.min() >= 0 and boxes[..., 2].max() <= 320 and boxes[..., 3].max() <= 240


def test_machine_info_names_cpu_cores_and_libraries():
    info = machine_info()
    assert info["cores"] >= 1 and info["cpu"]
    assert "numpy" in info["libraries"]


@pytest.mark.slow
def test_bench_measures_every_stage_on_a_tiny_bundle(tmp_path):
    from test_untrusted import tiny_bundle

    from vrgv.bench import run_bench
    from vrgv.synth import sample_video

    bundle = tiny_bundle()
    video, _ = sample_video(3, 0, min_frames=60, max_frames=60).write(tmp_path)
    report = run_bench(str(bundle), str(video), ["person-left-dog", "dog-chase-person"], backends=("onnxruntime",),
                       repeats=2, warmup=1, command="pytest")
    stages = {(s.stage, s.backend) for s in report.stages}
    for stage in ("decode", "extract", "encoder.embed", "encoder.attend", "linking", "interpolation",
                  "end_to_end.video", "end_to_end.relation"):
        assert any(s == stage for s, _ in stages), stage
    assert ("encoder.attend", "onnxruntime") in stages
    assert {b for s, b in stages if s == "linking"} >= {"numpy"}
    for s in report.stages:
        assert s.n >= 1 and math.isfinite(s.median_ms) and s.median_ms >= 0
    assert report.throughput["relations_per_s"] == pytest.approx(2 * report.throughput["videos_per_s"])
    assert report.peak_rss_mb > 10
    data = json.loads(report.to_json())
    assert data["relations"] == ["person-left-dog", "dog-chase-person"]
    md = report.to_markdown()
    assert "| decode | opencv |" in md and "Command: `pytest`" in md
    assert isinstance(BenchReport(**{**report.__dict__}), BenchReport)


@pytest.mark.slow
def test_bench_cli_prints_json_with_every_stage(tmp_path):
    from test_untrusted import tiny_bundle

    from vrgv.synth import sample_video

    video, _ = sample_video(3, 1, min_frames=60, max_frames=60).write(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "vrgv", "-q", "bench", "--model", str(tiny_bundle()), "--video", str(video),
         "--relations", "person-left-dog", "--backends", "onnxruntime", "torch", "--repeats", "1", "--warmup", "0",
         "--json", "--markdown", str(tmp_path / "r.md")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    backends = {(s["stage"], s["backend"]) for s in data["stages"]}
    assert ("encoder.attend", "onnxruntime") in backends and ("encoder.attend", "torch") in backends
    assert (tmp_path / "r.md").read_text().startswith("# vrgv latency benchmark")


def test_bench_cli_rejects_bad_repeats():
    out = subprocess.run([sys.executable, "-m", "vrgv", "bench", "--repeats", "0"], capture_output=True, text=True)
    assert out.returncode == 2 and "--repeats must be >= 1" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_gpu_script_runs_on_cpu(tmp_path):
    """benchmarks/gpu.sh works from the source tree (package shim) and prints one table; CPU stands in for CUDA."""
    from test_untrusted import tiny_bundle

    out = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--model", str(tiny_bundle()), "--device", "cpu",
         "--repeats", "2", "--warmup", "1", "--no-compile", "--out", str(tmp_path / "gpu.md")],
        capture_output=True, text=True, timeout=300, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    table = (tmp_path / "gpu.md").read_text()
    for variant in ("torch eager attend", "onnxruntime cpu"):
        assert variant in table
    for r in (1, 8, 64):
        assert f"| torch eager attend | {r} |" in table
