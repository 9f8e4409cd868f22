"""Rule train: train one model of the grid (paper appendix A.1-A.3); see docs/stages.md."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])  # noqa: F821 - injected by Snakemake
set_threads(snakemake.threads)  # noqa: F821

from intraclass.config import with_run_settings  # noqa: E402
from intraclass.train import TrainOutputs, run_training  # noqa: E402 - after set_threads

run_training(
    data_path=snakemake.input.data,  # noqa: F821
    outputs=TrainOutputs(
        model=snakemake.output.model,  # noqa: F821
        metrics=snakemake.output.metrics,  # noqa: F821
        history=snakemake.output.history,  # noqa: F821
        ckpt=snakemake.output.ckpt,  # noqa: F821
    ),
    model_params=dict(snakemake.params.model),  # noqa: F821
    arch=dict(snakemake.params.arch),  # noqa: F821
    labels=snakemake.params.labels,  # noqa: F821
    training=with_run_settings(snakemake, "training", snakemake.params.training),  # noqa: F821
    checkpoint_epochs=list(snakemake.params.checkpoint_epochs),  # noqa: F821
    log=log,
)
