"""A short run of `bench/run_all.py`, checking that it reports every ratio.

Timings depend on the machine, so only the presence and form of the values
are checked, never their size against a target.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = REPO_ROOT / "bench" / "run_all.py"
RUN_TIMEOUT_SECONDS = 300
RATIO_LINE = re.compile(
    r"^RATIO (P\d) \| (?P<measure>[^|]+) \| ours (?P<ours>[\d.]+) (?P<unit>\S+) "
    r"\| \w[\w+]* (?P<reference>[\d.]+) (?P=unit) \| ratio (?P<ratio>[\d.]+)x",
    re.MULTILINE,
)
EXPECTED_MEASURES = {
    "P3": "download 100 MiB: PdfcoClient.download vs curl -o",
    "P5": "20,000 pages, xref table: validate_merged_pdf vs qpdf --show-npages",
}


def test_run_all_quick_prints_ratios(tmp_path: Path) -> None:
    table_path = tmp_path / "bench.json"
    command = [sys.executable, str(RUN_ALL), "--quick", "--only", "p3,p5"]

    completed = subprocess.run(
        [*command, "--json", str(table_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )

    output = completed.stdout
    assert completed.returncode == 0, output + completed.stderr
    ratios = {match["measure"].strip(): match for match in RATIO_LINE.finditer(output)}
    for bench, measure in EXPECTED_MEASURES.items():
        assert measure in ratios, f"no {bench} ratio line for {measure!r}:\n{output}"
        line = ratios[measure]
        assert float(line["ours"]) > 0
        assert float(line["reference"]) > 0
        assert float(line["ratio"]) > 0
    assert "| Bench | Measure | Ours | Reference | Ratio | Target | Met |" in output
    assert output.startswith("MACHINE ")

    results = json.loads(table_path.read_text())
    assert {row["bench"] for row in results["results"]} == {"P3", "P5"}
    assert all(row["ours"] > 0 for row in results["results"])
    assert results["machine"]["nproc"].isdigit()
    memory = [row for row in results["results"] if "peak memory" in row["measure"]]
    assert [row["unit"] for row in memory] == ["MiB", "MiB"]
    assert memory[0]["target"] == "<= 150 MiB"
