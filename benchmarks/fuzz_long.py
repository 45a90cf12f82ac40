"""Long fuzz run: the strategies of ``tests/test_fuzz.py``, at least 10,000 cases per target.

Each target runs hypothesis with ``--cases`` examples and counts the cases its check function really
executed (hypothesis may stop early on a small search space; then it reruns with the next seed until
the count is reached). A failure is re-raised with hypothesis' minimal example. Writes a markdown report.

    nice .venv/bin/python benchmarks/fuzz_long.py --cases 10000 --report benchmarks/reports/fuzz.md
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
warnings.simplefilter("ignore", RuntimeWarning)  # numpy casts of huge fuzz values; the checks see the results
sys.path.insert(0, str(REPO / "tests"))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

import test_fuzz as F  # noqa: E402

TARGETS = {
    "relation parser (Vocabulary.canonical)": (F.relation_texts, F.check_relation),
    "Regions construction": (F.regions_kwargs(), F.check_regions_construction),
    "Regions.load of mutated .npz (bytes and fields)": (F.npz_cases, lambda c: F.check_regions_load(F.npz_case_bytes(c))),
    "annotation reader on mutated JSON": (F.annotation_documents(), F.check_annotation),
    "linking inputs (link, backend auto)": (F.linking_inputs(), F.check_linking),
}
EXTRA = {  # opt-in (--only): the same linking strategy against the pure-numpy reference backend
    "linking inputs (numpy reference)": (F.linking_inputs(), lambda kw: F.check_linking(kw, "numpy")),
}


def run_target(name: str, strategy, check, cases: int) -> dict:
    count = 0
    outcome = "ok"

    def counted(value) -> None:
        nonlocal count
        count += 1
        check(value)

    t0 = time.perf_counter()
    rounds = 0
    while count < cases and outcome == "ok":
        rounds += 1
        test = settings(max_examples=cases - count, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck), print_blob=True)(given(strategy)(counted))
        test = seed(rounds)(test)
        try:
            test()
        except Exception:  # noqa: BLE001 - reported, with hypothesis' minimal example
            outcome = "FAILED:\n" + traceback.format_exc(limit=-6)
        print(f"  {name}: {count} cases after round {rounds} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return {"name": name, "cases": count, "seconds": time.perf_counter() - t0, "outcome": outcome}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000, help="cases per target (default 10000)")
    ap.add_argument("--only", help="comma-separated texts: run the targets whose name contains one of them")
    ap.add_argument("--report", type=Path, help="write a markdown report here")
    args = ap.parse_args()
    results = []
    wanted = [w.strip() for w in args.only.split(",")] if args.only else None
    for name, (strategy, check) in {**TARGETS, **(EXTRA if wanted else {})}.items():
        if wanted and not any(w in name for w in wanted):
            continue
        print(f"{name}: up to {args.cases} cases", flush=True)
        results.append(run_target(name, strategy, check, args.cases))
    failed = [r for r in results if r["outcome"] != "ok"]
    lines = [
        "# Long fuzz run (issue 9)",
        "",
        "Strategies and per-case checks are those of `tests/test_fuzz.py`; a case passes when the target returns a",
        "valid object (whose invariants are checked) or raises its documented `vrgv.errors` exception.",
        "",
        "Command:",
        "",
        "```",
        f"nice .venv/bin/python benchmarks/fuzz_long.py --cases {args.cases}"
        + (f" --only '{args.only}'" if args.only else "") + (f" --report {args.report}" if args.report else ""),
        "```",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| target | cases run | seconds | outcome |",
        "| --- | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['cases']} | {r['seconds']:.0f} | "
                     f"{'ok' if r['outcome'] == 'ok' else 'FAILED (see below)'} |")
    for r in failed:
        lines += ["", f"## {r['name']}", "", "```", r["outcome"].strip(), "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
