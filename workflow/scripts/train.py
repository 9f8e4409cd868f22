"""Rule train: train one model of the grid (paper appendix A.1-A.3); see docs/stages.md."""

from pathlib import Path

from intraclass.runtime import script_logger, set_threads

# A job resuming a killed one (resume.pt left beside the model) continues its log.
resuming = (Path(snakemake.output.model).parent / "resume.pt").exists()
log = script_logger(snakemake.log[0], append=resuming)
# The thread count is part of the result on the CPU (intraclass.train): the configured
# one, even when Snakemake gives the job fewer cores (--cores below resources.train.threads).
threads = int(snakemake.params.threads)
set_threads(threads)

from intraclass.config import sizes_check, with_run_settings
from intraclass.runtime import pick_device

training = with_run_settings(snakemake, "training", snakemake.params.training)
device = pick_device(str(training["device"]), log)  # first line: a GPU job without a GPU
if snakemake.threads < threads:
    log.warning("the job has %d core(s) but runs %d threads (resources.train.threads), "
                "which define its result", snakemake.threads, threads)

from intraclass.train import TrainOutputs, run_training

run_training(
    data_path=snakemake.input.data,
    outputs=TrainOutputs.from_rule(snakemake.output),
    model_params=dict(snakemake.params.model),
    arch=dict(snakemake.params.arch),
    labels=snakemake.params.labels,
    training={**training, "device": str(device), "threads": threads},
    checkpoint_epochs=list(snakemake.params.checkpoint_epochs),
    log=log,
    # the study's k against the built model's layer widths: a builder's are known only here
    check_sizes=sizes_check(snakemake),
)
