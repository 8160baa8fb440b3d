# The replication report: tables, claims, figures and provenance in one self-contained page.
# `snakemake --report` also lists it and its figures.


rule report:
    input:
        tables=expand("results/tables/{table}.csv", table=TABLE_NAMES),
        claims="results/tables/claims.json",
        metrics=expand(
            "results/metrics/{job}.json", job=sorted([*PLAN.evaluations, *PLAN.svms])
        ),
        cams=expand("results/cams/{ext}", ext=sorted(PLAN.extractions)),
        config=CONFIG_FILE,
        code=_code("report"),
    output:
        html=report(
            "reports/replication.html",
            caption="../report/replication.rst",
            category="Replication report",
        ),
        figures=report(
            directory("reports/replication-figures"),
            patterns=["{name}.png"],
            caption="../report/figure.rst",
            category="Figures",
        ),
    log:
        "logs/report.log",
    conda:
        "../../environment.yml"
    shell:
        "camrepro report --config {input.config} --out {output.html} "
        "--figures-dir {output.figures} > {log} 2>&1"
