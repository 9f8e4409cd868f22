"""Rule measures: c1-c4 and their companions for every store of one model -> tidy CSV.

Contract: docs/stages.md, "measures". Logic: intraclass.measures.table.write_measures_csv.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
# the job's threads compute layers in parallel (intraclass.measures.measure_stats), each
# with a single-threaded BLAS: threads x BLAS threads would oversubscribe the cores
workers = snakemake.threads
set_threads(1)

from intraclass.measures.table import write_measures_csv

stores = list(snakemake.input.stores)
checkpoints = list(snakemake.params.checkpoints)
labels = snakemake.params.labels
settings = dict(snakemake.params.measures)
log.info("%d store(s) %s, labels %s, settings %s, %d thread(s)", len(stores), checkpoints, labels,
         settings, workers)
out = write_measures_csv(stores, checkpoints, labels, settings, snakemake.output.csv, workers)
log.info("wrote %s", out)
