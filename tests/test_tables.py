"""Tables: every paper cell reads a run and box setting that the experiment registry produces."""

from __future__ import annotations

from camrepro.plan import EXPERIMENTS, SVM_EXPERIMENTS
from camrepro.tables import SVM, TABLES, Eval


def test_every_table_cell_names_a_run_and_setting_of_the_registry():
    produced = {(e.role, model, pool, setting) for e in EXPERIMENTS.values()
                for model, pool, settings in e.entries for setting in settings}  # fmt: skip
    cells = [c for rows in TABLES.values() for row in rows.values() if isinstance(row, dict) for c in row.values()]
    evals = [c for c in cells if isinstance(c, Eval)]
    assert evals and all((c.role, c.model, c.pool, c.setting) in produced for c in evals), [
        c for c in evals if (c.role, c.model, c.pool, c.setting) not in produced
    ]
    assert all(c.experiment in SVM_EXPERIMENTS for c in cells if isinstance(c, SVM))
