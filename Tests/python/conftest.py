"""pytest setup for the CLI conformance suite (see support.py for the helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest

import support

# Lines the tests want printed once at the end of the run (summaries of aggregated checks).
SUMMARY_LINES: list[str] = []


def pytest_report_header(config: pytest.Config) -> list[str]:
    import numpy
    import onnx
    import onnxruntime

    try:
        binary = str(support.cli_path())
    except Exception as e:  # swift missing and no ONNX_REWRITE_BIN
        binary = f"unknown ({e})"
    return [
        f"onnx-rewrite: {binary}",
        f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, numpy {numpy.__version__}",
        f"cache: {support.cache_root()}",
    ]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if SUMMARY_LINES:
        terminalreporter.section("onnx-rewrite summary")
        for line in SUMMARY_LINES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def cli() -> Path:
    """The CLI binary; a missing binary fails every test that needs it (never skips)."""
    path = support.cli_path()
    if not path.is_file():
        pytest.fail(f"onnx-rewrite binary not found at {path}: run `swift build` or set ONNX_REWRITE_BIN", pytrace=False)
    return path


@pytest.fixture
def summary_lines() -> list[str]:
    return SUMMARY_LINES
