"""Tables: every paper cell reads a run and box setting that the experiment registry produces."""

from __future__ import annotations

import json

from camrepro.plan import EXPERIMENTS, SVM_EXPERIMENTS, build_plan, metrics_path
from camrepro.tables import SVM, TABLES, Eval, build_tables


def test_every_table_cell_names_a_run_and_setting_of_the_registry():
    produced = {(e.role, model, pool, setting) for e in EXPERIMENTS.values()
                for model, pool, settings in e.entries for setting in settings}  # fmt: skip
    cells = [c for rows in TABLES.values() for row in rows.values() if isinstance(row, dict) for c in row.values()]
    evals = [c for c in cells if isinstance(c, Eval)]
    assert evals and all((c.role, c.model, c.pool, c.setting) in produced for c in evals), [
        c for c in evals if (c.role, c.model, c.pool, c.setting) not in produced
    ]
    assert all(c.experiment in SVM_EXPERIMENTS for c in cells if isinstance(c, SVM))


def _transfer_config(transfer: dict) -> dict:
    datasets = {name: {"synthetic": {"preset": "synthetic-sun397", "seed": 0}} for name in
                ("synthetic-imagenet", *transfer.values())}  # fmt: skip
    return {"datasets": datasets, "roles": {"imagenet": "synthetic-imagenet", "transfer": transfer},
            "experiments": ["cam-transfer"], "seeds": [0]}  # fmt: skip


def test_a_table5_column_missing_from_roles_transfer_says_so_not_that_the_experiment_is_absent(tmp_path):
    config = _transfer_config({"sun397": "synthetic-sun397"})
    plan = build_plan(config)
    (job,) = plan.svms.values()
    metrics = tmp_path / metrics_path(job.id)
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"kind": "transfer", "seeds": {"0": {"sun397": 55.0, "metric": {}}}}))
    tables, _ = build_tables(plan, config, tmp_path)
    t5 = tables["cam-table5"].set_index(["row", "column"])
    assert t5.loc[("googlenet-gap", "sun397"), "reproduced"] == 55.0
    reason = t5.loc[("googlenet-gap", "sunattribute"), "reason"]
    assert t5.loc[("googlenet-gap", "sunattribute"), "status"] == "not run"
    assert "roles.transfer" in reason and "sunattribute" in reason and "not in this config" not in reason
    # an experiment the config does not select is still reported as such
    assert "cam-transfer-alexnet is not in this config" in t5.loc[("alexnet-fc7", "sun397"), "reason"]


def test_a_table5_column_the_svm_job_did_not_write_names_the_job(tmp_path):
    config = _transfer_config({"sun397": "synthetic-sun397", "sunattribute": "synthetic-sunattribute"})
    plan = build_plan(config)
    (job,) = plan.svms.values()
    metrics = tmp_path / metrics_path(job.id)
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"kind": "transfer", "seeds": {"0": {"sun397": 55.0}}}))
    tables, _ = build_tables(plan, config, tmp_path)
    reason = tables["cam-table5"].set_index(["row", "column"]).loc[("googlenet-gap", "sunattribute"), "reason"]
    assert str(metrics) in reason and "not in this config" not in reason
