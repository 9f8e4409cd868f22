"""Rule blackbox: c0, the black-box subclass measure of one model; see docs/measures.md.

A model whose training diverged (metrics.json status) gets a JSON with its status and a
null c0 instead of a measurement (intraclass.status)."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.config import with_run_settings
from intraclass.measures.blackbox import run_blackbox

result = run_blackbox(
    model_path=snakemake.input.model,
    data_path=snakemake.input.data,
    out_path=snakemake.output.json,
    settings=dict(snakemake.params.blackbox),
    labels=snakemake.params.labels,
    # train_per_class, data_seed from params; device and eval_batch_size from the config (run-only)
    training=with_run_settings(snakemake, "training", snakemake.params.training),
    log=log,
    metrics_path=snakemake.input.metrics,
)
log.info("wrote %s (status %s): c0=%s", snakemake.output.json, result["status"],
         result["measures"]["c0"]["value"])
