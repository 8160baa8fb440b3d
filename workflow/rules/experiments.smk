# The SVM experiments on fixed features (CAM Tables 4 and 5) and the tables: paper vs reproduced.


rule svm:
    input:
        unpack(lambda w: _inputs("svm", w.svm)),
    output:
        "results/metrics/{svm}.json",
    log:
        "logs/svm/{svm}.log",
    benchmark:
        "benchmarks/svm/{svm}.tsv"
    wildcard_constraints:
        svm=_alternatives(JOBS["svm"]),
    priority: 1  # as training (models.smk)
    conda:
        "../../environment.yml"
    threads: THREADS
    resources:
        gpu=1 if GPU_JOBS else 0,
    params:
        cmd=lambda w: _cmd("svm", w.svm),
        job=lambda w: _params("svm", w.svm),
    shell:
        "{params.cmd} > {log} 2>&1"


rule tables:
    input:
        unpack(lambda w: _inputs("tables", "tables")),
    output:
        TABLE_OUTPUTS,
    log:
        "logs/tables.log",
    conda:
        "../../environment.yml"
    params:
        cmd=lambda w: _cmd("tables", "tables"),
    shell:
        "{params.cmd} > {log} 2>&1"
