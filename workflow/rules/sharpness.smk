# Stage 5: the sharpness baselines of Jiang et al. (2020), 1/sigma', 1/sigma'', 1/alpha',
# 1/alpha'', on the training set each model was trained on.


rule sharpness:
    input:
        model=f"{RESULTS}/{{study}}/models/{{model}}/model.pt",
        data=dataset_file,
        # status of the model: a diverged one gets a skipped output (intraclass.status)
        metrics=f"{RESULTS}/{{study}}/models/{{model}}/metrics.json",
    output:
        json=f"{RESULTS}/{{study}}/sharpness/{{model}}.json",
    log:
        f"{RESULTS}/logs/{{study}}/sharpness/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/sharpness/{{model}}.tsv"
    conda:
        ENV
    threads: rule_resources("sharpness")["threads"]
    resources:
        gpu=config["gpu_per_job"],
        runtime=attempt_runtime("sharpness"),
        mem_mb=rule_resources("sharpness")["mem_mb"],
    params:
        sharpness=lambda wc: study(wc).settings["sharpness"],
        labels=lambda wc: study(wc).settings["labels"],
        training=data_params,
    script:
        "../scripts/sharpness.py"
