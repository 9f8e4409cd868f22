# Stage 1: datasets -> results/data/{dataset}.npz (format: docs/stages.md) and
# {dataset}.sha256, the digest of its content. A local rule: downloads happen where the
# workflow is started (a cluster's login node usually has internet; compute nodes often
# do not). Dataset names are the user's; each names its source (docs/datasets.md).
#
# A checkpoint, so that re-preparing a dataset (its .npz deleted by a failed job, a new
# root or download setting) retrains nothing when the content is the same: jobs reading
# the dataset are re-evaluated once it is written (common.smk: dataset_file takes the
# .npz as ancient, train also takes the digest, which Snakemake compares by checksum).

from intraclass.data.prepare import source_files


localrules:
    prepare_dataset,


checkpoint prepare_dataset:
    input:
        # the bundled file, an npz source's file, a hierarchy file: a change reruns this
        sources=lambda wc: source_files(wc.dataset, config["datasets"][wc.dataset]),
    output:
        npz=f"{RESULTS}/data/{{dataset}}.npz",
        digest=f"{RESULTS}/data/{{dataset}}.sha256",
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
        coarse_studies=lambda wc: [
            name
            for name, s in STUDIES.items()
            if s.settings["dataset"] == wc.dataset and s.settings["labels"] == "coarse"
        ],
    script:
        "../scripts/prepare_dataset.py"
