# Weights, training, extraction and evaluation. Every job's inputs and command come from
# the job generator (camrepro.jobs), the same one dvc.yaml is written from.


# Priorities (Snakemake runs the highest first among the jobs it can start): pretraining, which
# everything else waits on, then training and the SVMs, the longest jobs after it; extraction and
# evaluation fill the cores. Left to chance, the embedded default's GoogLeNet pretraining started
# 5 minutes in, with a core idle behind it (bench/README.md).
rule weights:
    input:
        unpack(lambda w: _inputs("weights", w.arch)),
    output:
        f"{DATA}/weights/{{arch}}.pth",
    log:
        "logs/weights/{arch}.log",
    benchmark:
        "benchmarks/weights/{arch}.tsv"
    wildcard_constraints:
        arch=_alternatives(JOBS["weights"]),
    priority: 2
    conda:
        "../../environment.yml"
    threads: THREADS
    resources:
        gpu=lambda w: 1 if PLAN.weights[w.arch].method == "pretrain" and GPU_JOBS else 0,
    params:
        cmd=lambda w: _cmd("weights", w.arch),
        job=lambda w: _params("weights", w.arch),
    shell:
        "{params.cmd} > {log} 2>&1"


# One training rule per set of seeds the runs train (`seeds_by_experiment` gives some runs fewer
# seeds): a rule's outputs are one list for all its jobs, and each job must declare exactly the
# model files it writes. `train` is the rule of the runs that train every seed of `seeds`.
for _seeds in sorted(
    {r.seeds for r in PLAN.runs.values() if not r.as_is}, key=len, reverse=True
):

    rule:
        name:
            "train"
            if _seeds == PLAN.seeds
            else "train_seeds_" + "_".join(map(str, _seeds))
        input:
            unpack(lambda w: _inputs("train", w.run)),
        output:
            [str(model_file(run_dir("{run}"), seed)) for seed in _seeds],
        log:
            "logs/train/{run}.log",
        benchmark:
            "benchmarks/train/{run}.tsv"
        wildcard_constraints:
            run=_alternatives(r for r in JOBS["train"] if PLAN.runs[r].seeds == _seeds),
        priority: 1
        conda:
            "../../environment.yml"
        threads: THREADS
        resources:
            gpu=GPUS_PER_JOB if GPU_JOBS else 0,
        params:
            cmd=lambda w: _cmd("train", w.run),
            job=lambda w: _params("train", w.run),
            gpus=GPUS_PER_JOB,
        shell:
            "{params.cmd} --threads {threads} --gpus-per-job {params.gpus} > {log} 2>&1"


rule extract:
    input:
        unpack(lambda w: _inputs("extract", w.ext)),
    output:
        directory("results/cams/{ext}"),
    log:
        "logs/extract/{ext}.log",
    benchmark:
        "benchmarks/extract/{ext}.tsv"
    wildcard_constraints:
        ext=_alternatives(JOBS["extract"]),
    conda:
        "../../environment.yml"
    threads: THREADS
    resources:
        gpu=1 if GPU_JOBS else 0,
    params:
        cmd=lambda w: _cmd("extract", w.ext),
        job=lambda w: _params("extract", w.ext),
    shell:
        "{params.cmd} > {log} 2>&1"


rule evaluate:
    input:
        unpack(lambda w: _inputs("evaluate", w.ev)),
    output:
        "results/metrics/{ev}.json",
    log:
        "logs/evaluate/{ev}.log",
    benchmark:
        "benchmarks/evaluate/{ev}.tsv"
    wildcard_constraints:
        ev=_alternatives(JOBS["evaluate"]),
    conda:
        "../../environment.yml"
    params:
        cmd=lambda w: _cmd("evaluate", w.ev),
        job=lambda w: _params("evaluate", w.ev),
    shell:
        "{params.cmd} > {log} 2>&1"
