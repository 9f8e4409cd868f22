# Stage 5b: c0, the black-box subclass measure (the authors' published measure code and
# the first author's thesis): interpolations within vs across the subclasses of a class,
# read on the model's softmax, on the training set each model was trained on.


rule blackbox:
    input:
        model=f"{RESULTS}/{{study}}/models/{{model}}/model.pt",
        data=dataset_file,
        # status of the model: a diverged one gets a skipped output (intraclass.status)
        metrics=f"{RESULTS}/{{study}}/models/{{model}}/metrics.json",
    output:
        json=f"{RESULTS}/{{study}}/blackbox/{{model}}.json",
    log:
        f"{RESULTS}/logs/{{study}}/blackbox/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/blackbox/{{model}}.tsv"
    conda:
        ENV
    threads: rule_resources("blackbox")["threads"]
    resources:
        gpu=config["gpu_per_job"],
        runtime=rule_resources("blackbox")["runtime"],
        mem_mb=rule_resources("blackbox")["mem_mb"],
    params:
        blackbox=lambda wc: study(wc).settings["blackbox"],
        labels=lambda wc: study(wc).settings["labels"],
        training=data_params,
    script:
        "../scripts/blackbox.py"
