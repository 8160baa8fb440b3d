# camrepro workflow. `snakemake --cores all` runs the embedded default (config/config.yaml);
# `snakemake --configfile config/paper.yaml --cores all --resources gpu=4` the full replication.
# Rules are thin shells over `camrepro` subcommands; the jobs come from the experiment registry
# (src/camrepro/plan.py), which also generates dvc.yaml.


# The embedded default, unless --configfile names another config (Snakemake would otherwise
# merge the two: datasets of both).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    tables,
    report,
    verify_dataset,


rule all:
    default_target: True
    input:
        expand("results/data/{dataset}.verify.json", dataset=list(config["datasets"])),
        "reports/replication.html" if PLAN.runs or PLAN.extractions else [],
