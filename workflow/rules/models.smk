# Weights, training, extraction and evaluation. Every job's command comes from
# the experiment registry (camrepro.plan.command), the same one dvc.yaml runs.


rule weights:
    input:
        data=lambda w: (
            [f"{DATA}/prepared/{PLAN.weights[w.arch].pretrain['dataset']}"]
            if PLAN.weights[w.arch].method == "pretrain"
            else []
        ),
        code=_code("weights"),
    output:
        f"{DATA}/weights/{{arch}}.pth",
    log:
        "logs/weights/{arch}.log",
    benchmark:
        "benchmarks/weights/{arch}.tsv"
    wildcard_constraints:
        arch=_alternatives(PLAN.weights),
    conda:
        "../../environment.yml"
    threads: THREADS
    resources:
        gpu=lambda w: 1 if PLAN.weights[w.arch].method == "pretrain" and GPU_JOBS else 0,
    params:
        cmd=lambda w: _cmd("weights", w.arch),
        job=lambda w: PLAN.job_params("weights", w.arch),
    shell:
        "{params.cmd} > {log} 2>&1"


rule train:
    input:
        data=lambda w: f"{DATA}/prepared/{PLAN.runs[w.run].dataset}",
        # a dataset that fails `camrepro data verify` is never trained on
        verified=lambda w: f"results/data/{PLAN.runs[w.run].dataset}.verify.json",
        weights=lambda w: (
            [f"{DATA}/weights/{PLAN.runs[w.run].weights}.pth"]
            if PLAN.runs[w.run].weights
            else []
        ),
        code=_code("train"),
    output:
        [str(model_file(run_dir("{run}"), seed)) for seed in PLAN.seeds],
    log:
        "logs/train/{run}.log",
    benchmark:
        "benchmarks/train/{run}.tsv"
    wildcard_constraints:
        run=_alternatives(PLAN.runs),
    conda:
        "../../environment.yml"
    threads: THREADS
    resources:
        gpu=GPUS_PER_JOB if GPU_JOBS else 0,
    params:
        cmd=lambda w: _cmd("train", w.run),
        job=lambda w: PLAN.job_params("runs", w.run),
        gpus=GPUS_PER_JOB,
    shell:
        "{params.cmd} --threads {threads} --gpus-per-job {params.gpus} > {log} 2>&1"


rule extract:
    input:
        models=lambda w: model_paths(PLAN, PLAN.extractions[w.ext].run),
        data=lambda w: f"{DATA}/prepared/{PLAN.extractions[w.ext].dataset}",
        code=_code("extract"),
    output:
        directory("results/cams/{ext}"),
    log:
        "logs/extract/{ext}.log",
    benchmark:
        "benchmarks/extract/{ext}.tsv"
    wildcard_constraints:
        ext=_alternatives(PLAN.extractions),
    conda:
        "../../environment.yml"
    threads: THREADS
    resources:
        gpu=1 if GPU_JOBS else 0,
    params:
        cmd=lambda w: _cmd("extract", w.ext),
        job=lambda w: PLAN.job_params("extractions", w.ext),
    shell:
        "{params.cmd} > {log} 2>&1"


rule evaluate:
    input:
        cams=lambda w: f"results/cams/{PLAN.evaluations[w.ev].extraction}",
        data=lambda w: f"{DATA}/prepared/{PLAN.evaluations[w.ev].dataset}",
        code=_code("evaluate"),
    output:
        "results/metrics/{ev}.json",
    log:
        "logs/evaluate/{ev}.log",
    benchmark:
        "benchmarks/evaluate/{ev}.tsv"
    wildcard_constraints:
        ev=_alternatives(PLAN.evaluations),
    conda:
        "../../environment.yml"
    params:
        cmd=lambda w: _cmd("evaluate", w.ev),
        job=lambda w: PLAN.job_params("evaluations", w.ev),
    shell:
        "{params.cmd} > {log} 2>&1"
