"""Rule measures: c1-c4 and their companions for every store of one model -> tidy CSV.

Contract: docs/stages.md, "measures". Logic: intraclass.measures.table.write_measures_csv.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])  # noqa: F821 - injected by Snakemake
set_threads(snakemake.threads)  # noqa: F821

from intraclass.measures.table import write_measures_csv  # noqa: E402 - after set_threads

stores = list(snakemake.input.stores)  # noqa: F821 - final first, then the checkpoints
checkpoints = list(snakemake.params.checkpoints)  # noqa: F821
labels = snakemake.params.labels  # noqa: F821 - fine | coarse: what the model trained on
settings = dict(snakemake.params.measures)  # noqa: F821
log.info("%d store(s) %s, labels %s, settings %s", len(stores), checkpoints, labels, settings)
out = write_measures_csv(stores, checkpoints, labels, settings, snakemake.output.csv)  # noqa: F821
log.info("wrote %s", out)
