"""The ``vrgv`` command as a user runs it (subprocess): help for every sub-command, and errors without tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec

import pytest

from vrgv.cli import COMMANDS

PRESENT = [name for name in COMMANDS if find_spec(f"vrgv.cli.{name}") is not None]


def vrgv(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vrgv", *args], capture_output=True, text=True, timeout=timeout)


def test_top_level_help_lists_every_sub_command():
    result = vrgv("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: vrgv")
    for name in PRESENT:
        assert name in result.stdout
    assert "eval" in PRESENT


def test_no_command_prints_help_and_fails():
    result = vrgv()
    assert result.returncode == 1 and "usage: vrgv" in result.stdout


@pytest.mark.parametrize("name", PRESENT)
def test_sub_command_help(name):
    result = vrgv(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: vrgv {name}")
    assert "Traceback" not in result.stderr


def test_help_is_torch_free():
    """Building the whole parser (what ``vrgv --help`` does) must not import torch or other heavy libraries."""
    code = (
        "import sys; from vrgv.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'onnx', 'ray', 'tensorrt') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_unknown_command_and_missing_arguments_are_usage_errors():
    result = vrgv("no-such-command")
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr
    result = vrgv("eval", "--gt", "x.json")
    assert result.returncode == 2 and "--pred" in result.stderr and "Traceback" not in result.stderr
    result = vrgv("eval", "--gt", "x.json", "--pred", "y.json", "--tiou", "1.5")
    assert result.returncode == 2 and "--tiou must lie in (0, 1]" in result.stderr


def test_vrgv_errors_print_one_line_without_traceback(tmp_path):
    missing = tmp_path / "missing.json"
    result = vrgv("eval", "--gt", str(missing), "--pred", str(missing))
    assert result.returncode == 2
    assert result.stderr.startswith("vrgv eval: error:") and str(missing) in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    # --debug shows the traceback for bug reports
    result = vrgv("--debug", "eval", "--gt", str(missing), "--pred", str(missing))
    assert result.returncode != 0 and "Traceback" in result.stderr and "AnnotationError" in result.stderr


def test_eval_end_to_end(tmp_path):
    box = [0, 0, 9, 9]
    gt = {"v": {"dog-chase-cat": [{"sub": {"0": box, "1": box}, "obj": {"0": box, "1": box}}]}}
    pred = {"v": {"dog-chase-cat": {"sub": {"0": box, "1": box}, "obj": {"1": box}}}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "p.json").write_text(json.dumps(pred))
    result = vrgv("eval", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "p.json"), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    # object: 1 common frame of a 2-frame union -> t = 0.5 >= 0.5
    assert out["average"] == {"AccS": 100.0, "AccO": 100.0, "AccR": 100.0} and out["num_relations"] == 1
