# Data stages: generate (synthetic) or download+prepare (real), then verify every image.


rule synthetic_dataset:
    input:
        code=src("data/synthetic.py", "data/metadata.py"),
    output:
        directory(f"{DATA}/prepared/{{dataset}}"),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    wildcard_constraints:
        dataset=_alternatives(SYNTHETIC),
    conda:
        "../../environment.yml"
    params:
        preset=lambda w: config["datasets"][w.dataset]["synthetic"]["preset"],
        seed=lambda w: config["datasets"][w.dataset]["synthetic"]["seed"],
        scale=lambda w: config["datasets"][w.dataset]["synthetic"].get("scale", 1.0),
    shell:
        "camrepro data synthetic --preset {params.preset} --seed {params.seed} --scale {params.scale} "
        "--out {output} -q > {log} 2>&1"


rule prepare_real_dataset:
    output:
        directory(f"{DATA}/prepared/{{dataset}}"),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    wildcard_constraints:
        dataset=_alternatives(REAL),
    conda:
        "../../environment.yml"
    params:
        source=lambda w: config["datasets"][w.dataset]["source"],
        root=lambda w, output: os.path.dirname(os.path.dirname(output[0])),
    shell:
        "camrepro data prepare {params.source} --root {params.root} --out {output} "
        "> {log} 2>&1"


rule verify_dataset:
    input:
        f"{DATA}/prepared/{{dataset}}",
    output:
        "results/data/{dataset}.verify.json",
    log:
        "logs/data/{dataset}.verify.log",
    benchmark:
        "benchmarks/data/{dataset}.verify.tsv"
    conda:
        "../../environment.yml"
    shell:
        "camrepro data verify {input} --out {output} -q > {log} 2>&1"
