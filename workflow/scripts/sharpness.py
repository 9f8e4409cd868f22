"""Rule sharpness: 1/sigma', 1/sigma'', 1/alpha', 1/alpha'' of one model; see docs/stages.md."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])  # noqa: F821 - injected by Snakemake
set_threads(snakemake.threads)  # noqa: F821

from intraclass.config import with_run_settings  # noqa: E402
from intraclass.sharpness import run_sharpness  # noqa: E402 - after set_threads

result = run_sharpness(
    model_path=snakemake.input.model,  # noqa: F821
    data_path=snakemake.input.data,  # noqa: F821
    out_path=snakemake.output.json,  # noqa: F821
    settings=dict(snakemake.params.sharpness),  # noqa: F821
    labels=snakemake.params.labels,  # noqa: F821 - fine | coarse: the labels trained on
    # train_per_class, data_seed from params; device from the config (run-only)
    training=with_run_settings(snakemake, "training", snakemake.params.training),  # noqa: F821
    log=log,
)
log.info("wrote %s: %s", snakemake.output.json,  # noqa: F821
         ", ".join(f"{k}={v['value']:.4g}" for k, v in result["measures"].items()))
