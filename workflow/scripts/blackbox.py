"""Rule blackbox: c0, the black-box subclass measure of one model; see docs/measures.md.

A model whose training diverged (metrics.json status) gets a JSON with its status and a
null c0 instead of a measurement (intraclass.status)."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.config import model_stage_args
from intraclass.measures.blackbox import run_blackbox

# model, data, metrics, labels; training: train_per_class, data_seed from params, device
# and eval_batch_size from the config (run-only)
result = run_blackbox(settings=dict(snakemake.params.blackbox), **model_stage_args(snakemake, log))
log.info("wrote %s (status %s): c0=%s", snakemake.output.json, result["status"],
         result["measures"]["c0"]["value"])
