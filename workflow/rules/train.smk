# Stage 2: one job per model of the grid (paper appendix A.1-A.3), on a GPU where there is one.
# Resume state lives in models/{model}/resume.pt, not a declared output, so a killed or
# failed job continues from its last epoch when rerun. A model that diverges is not a
# failed job: metrics.json records status diverged and later stages skip it.


rule train:
    input:
        data=dataset_file,
        data_digest=dataset_digest,
    output:
        model=f"{RESULTS}/{{study}}/models/{{model}}/model.pt",
        metrics=f"{RESULTS}/{{study}}/models/{{model}}/metrics.json",
        history=f"{RESULTS}/{{study}}/models/{{model}}/history.csv",
        ckpt=directory(f"{RESULTS}/{{study}}/models/{{model}}/ckpt"),
        init=f"{RESULTS}/{{study}}/models/{{model}}/init.pt",
        test_correct=f"{RESULTS}/{{study}}/models/{{model}}/test_correct.npy",
    log:
        f"{RESULTS}/logs/{{study}}/train/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/train/{{model}}.tsv"
    conda:
        ENV
    threads: rule_resources("train")["threads"]
    resources:
        gpu=config["gpu_per_job"],
        runtime=attempt_runtime("train"),
        mem_mb=rule_resources("train")["mem_mb"],
    params:
        model=lambda wc: study(wc).model(wc.model).to_dict(),
        arch=lambda wc: study(wc).settings["arch"],
        labels=lambda wc: study(wc).settings["labels"],
        training=lambda wc: result_settings("training", study(wc).settings["training"]),
        checkpoint_epochs=lambda wc: study(wc).checkpoint_epochs(wc.model),
        # torch's thread count: on the CPU part of the result (intraclass.train), so a
        # change reruns training; applied whatever --cores gives the job
        threads=rule_resources("train")["threads"],
    script:
        "../scripts/train.py"
