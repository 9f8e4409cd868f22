# Stage 1: datasets -> results/data/{dataset}.npz (format: docs/stages.md, DESIGN.md).
# A local rule: downloads happen where the workflow is started (a cluster's login node
# usually has internet; compute nodes often do not).

localrules:
    prepare_dataset,


def bundled_source(wc):
    """The shipped file of a bundled dataset, so that a change to it reruns its preparation.
    Relative to the repository, not the working directory (`-d` may point elsewhere)."""
    options = config["datasets"].get(wc.dataset, {})
    if options.get("source") != "bundled":
        return []
    return [str(Path(workflow.basedir) / "resources" / f"{wc.dataset}.npz")]


rule prepare_dataset:
    input:
        bundled=bundled_source,
    output:
        npz=f"{RESULTS}/data/{{dataset}}.npz",
    params:
        name=lambda wc: wc.dataset,
        options=lambda wc: config["datasets"][wc.dataset],
    log:
        f"{RESULTS}/logs/prepare_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_dataset/{{dataset}}.tsv"
    threads: rule_resources("prepare_dataset")["threads"]
    resources:
        runtime=rule_resources("prepare_dataset")["runtime"],
        mem_mb=rule_resources("prepare_dataset")["mem_mb"],
    conda:
        ENV
    script:
        "../scripts/prepare_dataset.py"
