"""Rule import_model: one model of a zoo in this project's per-model outputs (docs/zoo.md).
Logic: intraclass.zoo_import.import_model."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.config import sizes_check, with_run_settings
from intraclass.train import TrainOutputs
from intraclass.zoo_import import import_model

# device and eval batch size are run-only settings (intraclass.config.RUN_ONLY): from the config
training = with_run_settings(snakemake, "training", snakemake.params.training)
import_model(
    data_path=snakemake.input.data,
    checkpoint_path=snakemake.input.checkpoint,
    outputs=TrainOutputs.from_rule(snakemake.output),
    model=dict(snakemake.params.model),
    zoo=dict(snakemake.params.zoo),
    training=training,
    log=log,
    # the study's k against the built model's layer widths: a builder's are known only here
    check_sizes=sizes_check(snakemake),
)
