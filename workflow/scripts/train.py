"""Rule train: train one model of the grid (paper appendix A.1-A.3); see docs/stages.md."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.config import with_run_settings
from intraclass.train import TrainOutputs, run_training

run_training(
    data_path=snakemake.input.data,
    outputs=TrainOutputs(
        model=snakemake.output.model,
        metrics=snakemake.output.metrics,
        history=snakemake.output.history,
        ckpt=snakemake.output.ckpt,
    ),
    model_params=dict(snakemake.params.model),
    arch=dict(snakemake.params.arch),
    labels=snakemake.params.labels,
    training=with_run_settings(snakemake, "training", snakemake.params.training),
    checkpoint_epochs=list(snakemake.params.checkpoint_epochs),
    log=log,
)
