"""Rule measures: c1-c4 and their companions for every store of one model -> tidy CSV.

Contract: docs/stages.md, "measures". Logic: intraclass.measures.table.write_measures_csv.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])  # noqa: F821 - injected by Snakemake
# the job's threads compute layers in parallel (intraclass.measures.measure_stats), each
# with a single-threaded BLAS: threads x BLAS threads would oversubscribe the cores
workers = snakemake.threads  # noqa: F821
set_threads(1)

from intraclass.measures.table import write_measures_csv  # noqa: E402 - after set_threads

stores = list(snakemake.input.stores)  # noqa: F821 - final first, then the checkpoints
checkpoints = list(snakemake.params.checkpoints)  # noqa: F821
labels = snakemake.params.labels  # noqa: F821 - fine | coarse: what the model trained on
settings = dict(snakemake.params.measures)  # noqa: F821
log.info("%d store(s) %s, labels %s, settings %s, %d thread(s)", len(stores), checkpoints, labels,
         settings, workers)
out = write_measures_csv(stores, checkpoints, labels, settings, snakemake.output.csv, workers)  # noqa: F821
log.info("wrote %s", out)
