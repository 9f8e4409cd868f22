"""Rule extract: cache one checkpoint's BN->ReLU pre-activations in Zarr; see docs/stages.md."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])  # noqa: F821 - injected by Snakemake
set_threads(snakemake.threads)  # noqa: F821

from intraclass.activations import extract_checkpoint  # noqa: E402 - after set_threads
from intraclass.config import with_run_settings  # noqa: E402

store = extract_checkpoint(
    weights=snakemake.input.weights,  # noqa: F821 - model.pt, or the ckpt/ directory
    data=snakemake.input.data,  # noqa: F821
    out=snakemake.output.store,  # noqa: F821
    checkpoint=snakemake.params.checkpoint,  # noqa: F821 - final | epoch{E}
    extract=with_run_settings(snakemake, "extract", snakemake.params.extract),  # noqa: F821
    training=with_run_settings(snakemake, "training", snakemake.params.training),  # noqa: F821
)
log.info("wrote %s", store)
