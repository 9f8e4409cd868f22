# Stage 3: pre-activations of every BN->ReLU site, max-pooled over space, cached in Zarr:
# once for the final weights and once per evolution checkpoint.


def weights_file(wc):
    directory = model_dir(wc.study, wc.model)
    return f"{directory}/model.pt" if wc.checkpoint == "final" else f"{directory}/ckpt"


rule extract:
    input:
        weights=weights_file,
        data=dataset_file,
    output:
        store=directory(f"{RESULTS}/{{study}}/activations/{{model}}/{{checkpoint}}.zarr"),
    params:
        checkpoint=lambda wc: wc.checkpoint,
        extract=lambda wc: result_settings("extract", study(wc).settings["extract"]),
        training=data_params,
    log:
        f"{RESULTS}/logs/{{study}}/extract/{{model}}/{{checkpoint}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/extract/{{model}}/{{checkpoint}}.tsv"
    threads: rule_resources("extract")["threads"]
    resources:
        gpu=config["gpu_per_job"],
        runtime=rule_resources("extract")["runtime"],
        mem_mb=rule_resources("extract")["mem_mb"],
    conda:
        ENV
    script:
        "../scripts/extract.py"
