"""Rule sharpness: 1/sigma', 1/sigma'', 1/alpha', 1/alpha'' of one model; see docs/stages.md."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.config import with_run_settings
from intraclass.sharpness import run_sharpness

result = run_sharpness(
    model_path=snakemake.input.model,
    data_path=snakemake.input.data,
    out_path=snakemake.output.json,
    settings=dict(snakemake.params.sharpness),
    labels=snakemake.params.labels,
    # train_per_class, data_seed from params; device from the config (run-only)
    training=with_run_settings(snakemake, "training", snakemake.params.training),
    log=log,
)
log.info("wrote %s: %s", snakemake.output.json,
         ", ".join(f"{k}={v['value']:.4g}" for k, v in result["measures"].items()))
