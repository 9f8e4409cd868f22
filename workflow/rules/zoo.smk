# Model zoos (docs/zoo.md): a study with `zoo` trains nothing. import_model replaces train
# for its models and writes the same per-model outputs (model.pt in this project's
# checkpoint format, metrics.json, history.csv, ckpt/, test_correct.npy), so every later
# stage runs unchanged; import_init writes init.pt when the zoo gives initial weights
# (layer rotation). Both match zoo studies only (zoo_studies_pattern), and take
# precedence over train for them.


ruleorder: import_model > train
ruleorder: import_init > train


rule import_model:
    input:
        data=dataset_file,
        data_digest=dataset_digest,
        checkpoint=lambda wc: zoo_model(wc).checkpoint,
    output:
        model=f"{RESULTS}/{{study}}/models/{{model}}/model.pt",
        metrics=f"{RESULTS}/{{study}}/models/{{model}}/metrics.json",
        history=f"{RESULTS}/{{study}}/models/{{model}}/history.csv",
        ckpt=directory(f"{RESULTS}/{{study}}/models/{{model}}/ckpt"),
        test_correct=f"{RESULTS}/{{study}}/models/{{model}}/test_correct.npy",
    log:
        f"{RESULTS}/logs/{{study}}/import_model/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/import_model/{{model}}.tsv"
    wildcard_constraints:
        study=zoo_studies_pattern(),
    conda:
        ENV
    # an evaluation pass over the data, like extraction: extract's resources
    threads: rule_resources("extract")["threads"]
    resources:
        gpu=config["gpu_per_job"],
        runtime=rule_resources("extract")["runtime"],
        mem_mb=rule_resources("extract")["mem_mb"],
    params:
        model=lambda wc: zoo_model(wc).to_dict(),
        zoo=zoo_params,
        # the training subset the accuracies and the normalization statistics are taken on
        training=data_params,
    script:
        "../scripts/import_model.py"


rule import_init:
    input:
        init=lambda wc: zoo_model(wc).init,
        model=f"{RESULTS}/{{study}}/models/{{model}}/model.pt",
    output:
        init=f"{RESULTS}/{{study}}/models/{{model}}/init.pt",
    log:
        f"{RESULTS}/logs/{{study}}/import_init/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/import_init/{{model}}.tsv"
    wildcard_constraints:
        study=zoo_studies_pattern(),
    conda:
        ENV
    threads: 1
    resources:
        runtime=rule_resources("rotation")["runtime"],
        mem_mb=rule_resources("rotation")["mem_mb"],
    script:
        "../scripts/import_init.py"
