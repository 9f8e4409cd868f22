"""Rule sharpness: 1/sigma', 1/sigma'', 1/alpha', 1/alpha'' of one model; see docs/stages.md.

A model whose training diverged (metrics.json status) gets a JSON with its status and
null values instead of a search (intraclass.status)."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.config import model_stage_args
from intraclass.sharpness import run_sharpness

# model, data, metrics, labels; training: train_per_class, data_seed from params, device
# from the config (run-only)
result = run_sharpness(settings=dict(snakemake.params.sharpness), **model_stage_args(snakemake, log))
values = {k: v["value"] for k, v in result["measures"].items()}
log.info("wrote %s (status %s): %s", snakemake.output.json, result["status"],
         ", ".join(f"{k}={v:.4g}" if v is not None else f"{k}=null" for k, v in values.items()))
