#!/usr/bin/env sh
# Paper-trade a recorded market at 10x speed (a real capture if present, else a synthetic quiet HYPE hour).
set -e
REAL=../shared/data/real/hyperliquid_BTC_ws_raw_2025-01-26.gz
if [ -f "$REAL" ]; then
  hlmm paper --data "$REAL" --coin BTC --duration 25 --speed 10 --json paper_summary.json
else
  hlmm paper --preset hype_quiet --duration 600 --speed 10 --json paper_summary.json
fi
