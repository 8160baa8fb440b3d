# Data stages: generate (synthetic) or download+prepare (real), then verify every image.


rule synthetic_dataset:
    input:
        unpack(lambda w: _inputs("synthetic_dataset", w.dataset)),
    output:
        directory(f"{DATA}/prepared/{{dataset}}"),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    wildcard_constraints:
        dataset=_alternatives(JOBS["synthetic_dataset"]),
    conda:
        "../../environment.yml"
    params:
        cmd=lambda w: _cmd("synthetic_dataset", w.dataset),
        job=lambda w: _params("synthetic_dataset", w.dataset),
    shell:
        "{params.cmd} > {log} 2>&1"


rule prepare_real_dataset:
    input:
        unpack(lambda w: _inputs("prepare_real_dataset", w.dataset)),
    output:
        directory(f"{DATA}/prepared/{{dataset}}"),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    wildcard_constraints:
        dataset=_alternatives(JOBS["prepare_real_dataset"]),
    conda:
        "../../environment.yml"
    params:
        cmd=lambda w: _cmd("prepare_real_dataset", w.dataset),
        job=lambda w: _params("prepare_real_dataset", w.dataset),
    shell:
        "{params.cmd} > {log} 2>&1"


rule verify_dataset:
    input:
        unpack(lambda w: _inputs("verify_dataset", w.dataset)),
    output:
        "results/data/{dataset}.verify.json",
    log:
        "logs/data/{dataset}.verify.log",
    benchmark:
        "benchmarks/data/{dataset}.verify.tsv"
    wildcard_constraints:
        dataset=_alternatives(JOBS["verify_dataset"]),
    conda:
        "../../environment.yml"
    params:
        cmd=lambda w: _cmd("verify_dataset", w.dataset),
    shell:
        "{params.cmd} > {log} 2>&1"
