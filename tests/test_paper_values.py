"""paper_values.yaml against the papers' text: every transcribed number is where the paper prints it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from camrepro.tables import TABLES, paper_values
from conftest import PAPERS_MISSING

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers"
CAM, RETHINKING = PAPERS / "cam_zhou_2016.txt", PAPERS / "rethinking_cam_bae_2020.md"
HEADINGS = {
    "cam-table1": (CAM, "Table 1:"), "cam-table2": (CAM, "Table 2:"), "cam-table3": (CAM, "Table 3:"),
    "cam-table4": (CAM, "Table 4:"), "cam-table5": (CAM, "Table 5:"),
    "rethinking-table2": (RETHINKING, "**Table 2.**"), "rethinking-table3": (RETHINKING, "**Table 3.**"),
}  # fmt: skip
# The project's text copy of the CAM paper lacks this row, which the published PDF has.
NOT_IN_TEXT = {("cam-table1", "alexnet*-gap")}
NUMBER = re.compile(r"\d+\.\d+")
# conftest.py counts skips with this reason and says so in the summary (PAPER TEXT MISSING)
NEEDS_PAPERS = pytest.mark.skipif(not CAM.exists(), reason=f"{PAPERS_MISSING} ({PAPERS})")


def _block(path: Path, heading: str) -> list[list[float]]:
    """The numbers of each line of a table, from its heading to the next caption or table."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    out = []
    for line in lines[start + 1 :]:
        if line.startswith(("Refer to caption", "Table ", "**Table", "Figure")):
            break
        out.append([float(x) for x in NUMBER.findall(line)])
    return out


def _contains(numbers: list[float], values: list[float]) -> bool:
    n = len(values)
    return any(numbers[i : i + n] == values for i in range(len(numbers) - n + 1))


@NEEDS_PAPERS
@pytest.mark.parametrize("table", sorted(HEADINGS))
def test_every_row_is_printed_in_the_paper_table(table):
    spec = paper_values()[table]
    block = _block(*HEADINGS[table])
    assert block, table
    for row_id, row in spec["rows"].items():
        values = [float(row[c]) for c in spec["columns"]]
        found = any(_contains(line, values) for line in block)
        assert found != ((table, row_id) in NOT_IN_TEXT), (table, row_id, values)


@NEEDS_PAPERS
def test_cub_localization_numbers_are_the_papers():
    text = CAM.read_text()
    rows = paper_values()["cam-cub-localization"]["rows"]
    assert f"localize the bird in {rows['googlenet-gap']['accuracy']}%" in text
    assert f"chance performance of {rows['chance']['accuracy']}%" in text


def test_every_table_row_is_reproduced_not_run_or_paper_only():
    """No paper row is silently dropped: each has a source in camrepro.tables or is marked."""
    for table, spec in paper_values().items():
        assert spec["tolerance"] > 0 and spec["tolerance_why"].strip()
        for row_id, row in spec["rows"].items():
            assert row.get("reference") or row_id in TABLES[table], (table, row_id)


def test_missing_paper_text_is_said_in_the_summary(tmp_path):
    """A checkout without ../shared/papers: the paper-text checks skip, and the summary says so."""
    tests = tmp_path / "checkout" / "tests"  # ../shared/papers of this checkout does not exist
    tests.mkdir(parents=True)
    here = Path(__file__).parent  # conftest.py with the helper modules it imports (every non-test module)
    for source in [here / "test_paper_values.py", *(p for p in here.glob("*.py") if not p.name.startswith("test_"))]:
        shutil.copy(source, tests / source.name)
    (tests.parent / "pytest.ini").write_text("[pytest]\n")
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-k", "not missing_paper_text", "tests"],
        cwd=tests.parent, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    checks = len(HEADINGS) + 1  # every table's rows, and the CUB localization sentence
    assert f"PAPER TEXT MISSING: {checks} paper-text checks skipped: {PAPERS_MISSING}" in res.stdout
    assert f"1 passed, {checks} skipped" in res.stdout
