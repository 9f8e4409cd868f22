"""Rule extract: cache one checkpoint's BN->ReLU pre-activations in Zarr; see docs/stages.md."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.activations import extract_checkpoint
from intraclass.config import with_run_settings

store = extract_checkpoint(
    weights=snakemake.input.weights,
    data=snakemake.input.data,
    out=snakemake.output.store,
    checkpoint=snakemake.params.checkpoint,
    extract=with_run_settings(snakemake, "extract", snakemake.params.extract),
    training=with_run_settings(snakemake, "training", snakemake.params.training),
)
log.info("wrote %s", store)
