# Stage 6: one table per study, the granulated Kendall coefficients (paper Tables 1-3),
# and every figure of the paper, each its own rule so that a figure's settings rerun
# only that figure. Everything here is marked for `snakemake --report`.


rule collect:
    input:
        # one named input per model-level stage of the measure registry (sharpness,
        # blackbox, rotation, plug-ins): {stage: JSON of every model} (common.smk)
        unpack(stage_inputs),
        metrics=per_model(f"{RESULTS}/{{study}}/models/{{model}}/metrics.json"),
        measures=per_model(f"{RESULTS}/{{study}}/measures/{{model}}.csv"),
        measures_status=per_model(f"{RESULTS}/{{study}}/measures/{{model}}.status.json"),
        test_correct=per_model(f"{RESULTS}/{{study}}/models/{{model}}/test_correct.npy"),
    output:
        models=f"{RESULTS}/{{study}}/tables/models.csv",
        measures=f"{RESULTS}/{{study}}/tables/measures.csv.gz",
        correct=f"{RESULTS}/{{study}}/tables/test_correct.npz",
    log:
        f"{RESULTS}/logs/{{study}}/collect.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/collect.tsv"
    localrule: True
    conda:
        ENV
    threads: rule_resources("analysis")["threads"]
    resources:
        runtime=rule_resources("analysis")["runtime"],
        mem_mb=rule_resources("analysis")["mem_mb"],
    params:
        models=lambda wc: [m.to_dict() for m in study(wc).models],
        k=lambda wc: study(wc).settings["measures"]["k"],
    script:
        "../scripts/collect.py"


rule kendall:
    input:
        models=rules.collect.output.models,
        measures=rules.collect.output.measures,
        correct=rules.collect.output.correct,
    output:
        # in the report as HTML pages (workflow/rules/report.smk): a CSV is only a download there
        csv=f"{RESULTS}/{{study}}/tables/kendall.csv",
        md=f"{RESULTS}/{{study}}/tables/kendall.md",
        tex=f"{RESULTS}/{{study}}/tables/kendall.tex",
        k_curve=f"{RESULTS}/{{study}}/tables/kendall_k.csv",
        cmi_csv=f"{RESULTS}/{{study}}/tables/cmi.csv",
        cmi_md=f"{RESULTS}/{{study}}/tables/cmi.md",
        cmi_tex=f"{RESULTS}/{{study}}/tables/cmi.tex",
    log:
        f"{RESULTS}/logs/{{study}}/kendall.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/kendall.tsv"
    localrule: True
    conda:
        ENV
    threads: rule_resources("analysis")["threads"]
    resources:
        runtime=rule_resources("analysis")["runtime"],
        mem_mb=rule_resources("analysis")["mem_mb"],
    params:
        # the paper's eight axes (a grid) or the zoo table's axis columns (docs/zoo.md)
        axes=lambda wc: study(wc).axes,
        generalization=lambda wc: study(wc).settings["analysis"]["generalization"],
        analysis=lambda wc: study(wc).settings["analysis"],
        k=lambda wc: study(wc).settings["measures"]["k"],
        sharpness=sharpness_target,
    script:
        "../scripts/kendall.py"


for _fig in FIGURES:

    rule:
        name:
            f"figure_{_fig}"
        input:
            models=rules.collect.output.models,
            measures=rules.collect.output.measures,
            kendall_k=rules.kendall.output.k_curve,
            stores=figure_stores(_fig),
            correct=rules.collect.output.correct if _fig == "3" else [],
        output:
            pdf=f"{RESULTS}/{{study}}/figures/fig{_fig}.pdf",
            png=report(
                f"{RESULTS}/{{study}}/figures/fig{_fig}.png",
                caption=f"../report/fig{_fig}.rst",
                category="Figures",
                subcategory="{study}",
                # zero-padded: the report sorts labels as text ("Figure 11" before "Figure 3")
                labels={"figure": f"Figure {_fig.zfill(2)}"},
            ),
        log:
            f"{RESULTS}/logs/{{study}}/figures/fig{_fig}.log",
        benchmark:
            f"{RESULTS}/benchmarks/{{study}}/figures/fig{_fig}.tsv"
        localrule: True
        conda:
            ENV
        threads: rule_resources("analysis")["threads"]
        resources:
            runtime=rule_resources("analysis")["runtime"],
            mem_mb=rule_resources("analysis")["mem_mb"],
        params:
            fig=_fig,
            style=lambda wc: study(wc).settings["figures"]["style"],
            settings=lambda wc, fig=_fig: study(wc).settings["figures"].get(f"fig{fig}", {}),
            checkpoints=lambda wc, fig=_fig: fig7_checkpoints(study(wc)) if fig == "7" else [],
            generalization=lambda wc: study(wc).settings["analysis"]["generalization"],
        script:
            "../scripts/figure.py"
