# The SVM experiments on fixed features (CAM Tables 4 and 5) and the tables: paper vs reproduced.


rule svm:
    input:
        models=lambda w: model_paths(PLAN, PLAN.svms[w.svm].run),
        data=lambda w: [
            f"{DATA}/prepared/{d}" for d in PLAN.svms[w.svm].datasets.values()
        ],
        code=_code("svm"),
    output:
        "results/metrics/{svm}.json",
    log:
        "logs/svm/{svm}.log",
    benchmark:
        "benchmarks/svm/{svm}.tsv"
    wildcard_constraints:
        svm=_alternatives(PLAN.svms),
    conda:
        "../../environment.yml"
    threads: THREADS
    resources:
        gpu=1 if GPU_JOBS else 0,
    params:
        cmd=lambda w: _cmd("svm", w.svm),
        job=lambda w: PLAN.job_params("svms", w.svm),
    shell:
        "{params.cmd} > {log} 2>&1"


rule tables:
    input:
        metrics=expand(
            "results/metrics/{job}.json", job=sorted([*PLAN.evaluations, *PLAN.svms])
        ),
        config=CONFIG_FILE,
        code=_code("tables"),
    output:
        expand("results/tables/{table}.csv", table=TABLE_NAMES),
        "results/tables/metrics.csv",
        "results/tables/claims.json",
    log:
        "logs/tables.log",
    conda:
        "../../environment.yml"
    shell:
        "camrepro tables --config {input.config} --out-dir results/tables > {log} 2>&1"
