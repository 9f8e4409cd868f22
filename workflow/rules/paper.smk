# Paper vs this run: the paper's Tables 1-3 next to a study's own granulated Kendall table
# (same rows, same columns, this run's bootstrap intervals), for each study whose dataset,
# architecture and label level match one of the paper's studies
# (intraclass.evaluation.paper; the paper's numbers: resources/paper_tables.csv).

# (paper_table, paper_targets: common.smk)


rule paper_vs_run:
    input:
        kendall=rules.kendall.output.csv,
        models=rules.collect.output.models,
    output:
        csv=f"{RESULTS}/{{study}}/tables/paper_vs_run.csv",
        md=f"{RESULTS}/{{study}}/tables/paper_vs_run.md",
        html=report(
            f"{RESULTS}/{{study}}/tables/paper_vs_run.html",
            caption="../report/paper.rst",
            category="Tables",
            subcategory="{study}",
            labels={"table": "paper vs this run"},
        ),
    log:
        f"{RESULTS}/logs/{{study}}/paper_vs_run.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/paper_vs_run.tsv"
    localrule: True
    conda:
        ENV
    threads: 1
    resources:
        runtime=rule_resources("analysis")["runtime"],
        mem_mb=rule_resources("analysis")["mem_mb"],
    params:
        dataset=lambda wc: study(wc).settings["dataset"],
        arch=lambda wc: study(wc).settings["arch"]["name"],
        labels=lambda wc: study(wc).settings["labels"],
        k=lambda wc: study(wc).settings["measures"]["k"],
        c4_active=lambda wc: study(wc).settings["measures"]["c4_active"],
        sharpness=sharpness_target,
        paper_table=lambda wc: paper_table(study(wc)).number if paper_table(study(wc)) else None,
    script:
        "../scripts/paper.py"
