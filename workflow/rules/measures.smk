# Stage 4: every activation measure of the registry (c1-c4, paper Eqs. 1-4; clusterability,
# purity, bimodality) with layer-wise values, per-class values and k curves, for the final
# weights and every evolution checkpoint of one model, reading each store once. CPU only.
# Its params are the `measures` settings alone: a new k or clusterability factor reruns
# this stage and what follows, never training or extraction.


rule measures:
    input:
        stores=lambda wc: [store_path(wc.study, wc.model, c) for c in study(wc).checkpoints(wc.model)],
    output:
        csv=f"{RESULTS}/{{study}}/measures/{{model}}.csv",
        # {"status", "reason"}: ok, or why the model was not measured (intraclass.status)
        status=f"{RESULTS}/{{study}}/measures/{{model}}.status.json",
    log:
        f"{RESULTS}/logs/{{study}}/measures/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/measures/{{model}}.tsv"
    conda:
        ENV
    threads: rule_resources("measures")["threads"]
    resources:
        runtime=attempt_runtime("measures"),
        mem_mb=rule_resources("measures")["mem_mb"],
    params:
        checkpoints=lambda wc: study(wc).checkpoints(wc.model),
        labels=lambda wc: study(wc).settings["labels"],
        measures=lambda wc: study(wc).settings["measures"],
    script:
        "../scripts/measures.py"
