"""deploy/grafana-dashboard.json is valid and uses exactly the metric names the sink exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hlmm.report.metrics import MetricsSink

DASH = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"


def _sink_names() -> set[str]:
    names: set[str] = set()
    for fam in MetricsSink().registry.collect():
        if fam.type == "counter":
            names.add(fam.name + "_total")
        elif fam.type == "histogram":
            names.update({fam.name + "_bucket", fam.name + "_count", fam.name + "_sum"})
        else:
            names.add(fam.name)
    return names


def test_dashboard_is_valid_and_matches_metric_names() -> None:
    dash = json.loads(DASH.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 15
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bhlmm_[a-z_]+", e)}
    known = _sink_names()
    assert used <= known, f"dashboard uses unknown metrics: {sorted(used - known)}"
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in known}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in used}
    missing = families - shown - {"hlmm_last_update_timestamp_seconds"}
    assert not missing, f"metrics without a panel: {sorted(missing)}"
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0
