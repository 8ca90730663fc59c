"""``hlmm report RESULT_DIR``: render a result directory (summary.json + series.json) to one HTML file."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a backtest result directory")
    p.add_argument("result_dir", metavar="RESULT_DIR", help="directory with summary.json and series.json")
    p.add_argument("--out", help="HTML file to write (default: RESULT_DIR/report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hlmm.report.html import ResultDirError, write_report

    try:
        path = write_report(args.result_dir, args.out)
    except ResultDirError as e:
        print(f"hlmm report: {e}", file=sys.stderr)
        return 2
    print(f"report written to {path}")
    return 0
