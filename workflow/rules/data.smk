# Stage 1: datasets -> results/data/{dataset}.npz (format: docs/stages.md).
# A local rule: downloads happen where the workflow is started (a cluster's login node
# usually has internet; compute nodes often do not).


localrules:
    prepare_dataset,


rule prepare_dataset:
    input:
        bundled=bundled_source,
    output:
        npz=f"{RESULTS}/data/{{dataset}}.npz",
    log:
        f"{RESULTS}/logs/prepare_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_dataset/{{dataset}}.tsv"
    conda:
        ENV
    threads: rule_resources("prepare_dataset")["threads"]
    resources:
        runtime=rule_resources("prepare_dataset")["runtime"],
        mem_mb=rule_resources("prepare_dataset")["mem_mb"],
    params:
        name=lambda wc: wc.dataset,
        options=lambda wc: config["datasets"][wc.dataset],
    script:
        "../scripts/prepare_dataset.py"
