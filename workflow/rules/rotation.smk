# Stage 5c: layer rotation (Carbonnelle & De Vleeschouwer): the cosine distance between
# each layer's initial (epoch 0) and final kernel, and the same curve at every evolution
# checkpoint of the models followed over training. Reads weights only: a CPU job.


rule rotation:
    input:
        init=f"{RESULTS}/{{study}}/models/{{model}}/init.pt",
        model=f"{RESULTS}/{{study}}/models/{{model}}/model.pt",
        ckpt=f"{RESULTS}/{{study}}/models/{{model}}/ckpt",
        # status of the model: a diverged one gets a skipped output (intraclass.status)
        metrics=f"{RESULTS}/{{study}}/models/{{model}}/metrics.json",
    output:
        json=f"{RESULTS}/{{study}}/rotation/{{model}}.json",
    log:
        f"{RESULTS}/logs/{{study}}/rotation/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/rotation/{{model}}.tsv"
    conda:
        ENV
    threads: rule_resources("rotation")["threads"]
    resources:
        runtime=rule_resources("rotation")["runtime"],
        mem_mb=rule_resources("rotation")["mem_mb"],
    params:
        epochs=lambda wc: study(wc).checkpoint_epochs(wc.model),
    script:
        "../scripts/rotation.py"
