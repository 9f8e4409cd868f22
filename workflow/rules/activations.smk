# Stage 3: pre-activations of every BN->ReLU site, max-pooled over space, cached in Zarr:
# once for the final weights and once per evolution checkpoint.


rule extract:
    input:
        weights=weights_file,
        data=dataset_file,
        # status of the model: a diverged one gets a skipped output (intraclass.status)
        metrics=f"{RESULTS}/{{study}}/models/{{model}}/metrics.json",
    output:
        store=directory(f"{RESULTS}/{{study}}/activations/{{model}}/{{checkpoint}}.zarr"),
    log:
        f"{RESULTS}/logs/{{study}}/extract/{{model}}/{{checkpoint}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/extract/{{model}}/{{checkpoint}}.tsv"
    conda:
        ENV
    threads: rule_resources("extract")["threads"]
    resources:
        gpu=config["gpu_per_job"],
        runtime=attempt_runtime("extract"),
        mem_mb=rule_resources("extract")["mem_mb"],
    params:
        checkpoint=lambda wc: wc.checkpoint,
        extract=lambda wc: result_settings("extract", study(wc).settings["extract"]),
        training=data_params,
    script:
        "../scripts/extract.py"
