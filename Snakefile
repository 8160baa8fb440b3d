# camrepro workflow. `snakemake --cores all` runs the embedded default (config/config.yaml);
# `snakemake --configfile config/paper-data.yaml ...` the real datasets. Rules are thin shells
# over `camrepro` subcommands: all logic lives in src/camrepro.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"


rule all:
    default_target: True
    input:
        expand(
            "results/data/{dataset}.verify.json",
            dataset=list(config["datasets"]),
        ),
