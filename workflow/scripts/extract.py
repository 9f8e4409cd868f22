"""Rule extract: cache one checkpoint's BN->ReLU pre-activations in Zarr; see docs/stages.md.

A model whose training diverged (metrics.json status) gets a skipped store instead: a
directory holding only skipped.json with the status and reason (intraclass.status)."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.config import with_run_settings
from intraclass.status import OK, read_status, write_skipped_store

status, reason = read_status(snakemake.input.metrics)
if status != OK:
    store = write_skipped_store(snakemake.output.store, status, reason)
    log.warning("model has status %s (%s): wrote the skipped store %s", status, reason, store)
else:
    from intraclass.activations import extract_checkpoint
    from intraclass.runtime import pick_device

    training = with_run_settings(snakemake, "training", snakemake.params.training)
    device = pick_device(str(training["device"]), log)  # first line: a GPU job without a GPU
    store = extract_checkpoint(
        weights=snakemake.input.weights,
        data=snakemake.input.data,
        out=snakemake.output.store,
        checkpoint=snakemake.params.checkpoint,
        extract=with_run_settings(snakemake, "extract", snakemake.params.extract),
        training={**training, "device": str(device)},
    )
    log.info("wrote %s", store)
