#!/usr/bin/env python3
"""Compare `onnx-rewrite print --full MODEL` with `onnx.printer.to_text` on every model under some folders.

    compare_printer.py --bin .build/debug/onnx-rewrite --models ~/.cache/onnx-rewrite/node-tests/onnx-1.23.2
    compare_printer.py --bin BIN --models Fixtures --models /some/other/dir --show 3

Every `*.onnx` below each --models folder is printed both ways (onnx's side loads no external data, so
external tensors print as references on both sides). A model onnx's own printer fails on (e.g. raw_data
that does not fit its dims, or bytes that are not UTF-8) is reported as skipped, not as a mismatch.
Exits 1 if any model's text differs or the binary fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnx.printer


@dataclass
class Result:
    model: Path
    status: str  # "match", "mismatch", "bin-error" or "skipped"
    detail: str = ""


def compare(binary: Path, model: Path, timeout: float) -> Result:
    try:
        expected = onnx.printer.to_text(onnx.load(str(model), load_external_data=False))
    except Exception as e:  # noqa: BLE001 - any failure of onnx's side means there is nothing to compare with
        return Result(model, "skipped", f"onnx.printer fails: {type(e).__name__}: {str(e).strip()[:200]}")
    proc = subprocess.run(
        [str(binary), "print", "--full", str(model)],
        capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[:500]
        return Result(model, "bin-error", f"exit {proc.returncode}: {err}")
    actual = proc.stdout.decode(errors="replace")
    if actual == expected:
        return Result(model, "match")
    diff = difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True),
        fromfile="onnx.printer.to_text", tofile="onnx-rewrite print --full",
    )
    return Result(model, "mismatch", "".join(diff))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, type=Path, help="the onnx-rewrite binary (or one taking `print --full MODEL`)")
    parser.add_argument("--models", required=True, type=Path, action="append", help="a folder searched for *.onnx (repeatable)")
    parser.add_argument("--show", type=int, default=5, help="how many mismatches to show a diff of (default 5)")
    parser.add_argument("--diff-lines", type=int, default=40, help="lines of each diff shown (default 40)")
    parser.add_argument("--jobs", type=int, default=8, help="models compared in parallel (default 8)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per binary run (default 120)")
    args = parser.parse_args()

    models = sorted({m for folder in args.models for m in folder.rglob("*.onnx")})
    if not models:
        print(f"no *.onnx under {', '.join(map(str, args.models))}", file=sys.stderr)
        return 1
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda m: compare(args.bin, m, args.timeout), models))

    by_status: dict[str, list[Result]] = {}
    for r in results:
        by_status.setdefault(r.status, []).append(r)
    for r in by_status.get("mismatch", [])[: args.show]:
        lines = r.detail.splitlines(keepends=True)
        more = f"... ({len(lines) - args.diff_lines} more diff lines)\n" if len(lines) > args.diff_lines else ""
        print(f"=== {r.model}\n{''.join(lines[: args.diff_lines])}{more}")
    for status in ("mismatch", "bin-error", "skipped"):
        for r in by_status.get(status, []):
            detail = "" if status == "mismatch" else f": {r.detail}"
            print(f"{status}: {r.model}{detail}")
    counts = ", ".join(f"{len(by_status.get(s, []))} {s}" for s in ("match", "mismatch", "bin-error", "skipped"))
    print(f"{len(models)} models: {counts}")
    return 1 if by_status.get("mismatch") or by_status.get("bin-error") else 0


if __name__ == "__main__":
    sys.exit(main())
