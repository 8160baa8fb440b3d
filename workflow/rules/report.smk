# The replication report: tables, claims, figures and provenance in one self-contained page.
# `snakemake --report` also lists it and its figures.


rule report:
    input:
        unpack(lambda w: _inputs("report", "report")),
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
    params:
        cmd=lambda w: _cmd("report", "report"),
    shell:
        "{params.cmd} > {log} 2>&1"
