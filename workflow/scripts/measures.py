"""Rule measures: c1-c4 and their companions for every store of one model -> tidy CSV.

Contract: docs/stages.md, "measures". Logic: intraclass.measures.table.write_measures_csv.
The status JSON says whether the model was measured (intraclass.status): a model skipped
upstream (diverged) or with non-finite pre-activations (unmeasurable) gets a CSV with
the header only and its status and reason there.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
# the job's threads compute layers in parallel (intraclass.measures.measure_stats), each
# with a single-threaded BLAS: threads x BLAS threads would oversubscribe the cores
workers = snakemake.threads
set_threads(1)

# plug-in measures (the study's measures.plugins) register before anything reads the registry
from intraclass.measures import registry

registry.load_plugins(registry.script_plugins(snakemake))

import pandas as pd

from intraclass.measures.table import CSV_COLUMNS, write_measures_csv
from intraclass.runtime import write_atomic
from intraclass.status import OK, stores_status, write_json

stores = list(snakemake.input.stores)
checkpoints = list(snakemake.params.checkpoints)
labels = snakemake.params.labels
settings = dict(snakemake.params.measures)
status, reason = stores_status(stores, checkpoints)
if status != OK:
    log.warning("model not measured: status %s (%s)", status, reason)
    header = pd.DataFrame(columns=CSV_COLUMNS)
    out = write_atomic(snakemake.output.csv, lambda tmp: header.to_csv(tmp, index=False))
else:
    log.info("%d store(s) %s, labels %s, settings %s, %d thread(s)", len(stores), checkpoints,
             labels, settings, workers)
    out = write_measures_csv(stores, checkpoints, labels, settings, snakemake.output.csv, workers)
write_json(snakemake.output.status, {"status": status, "reason": reason})
log.info("wrote %s (status %s)", out, status)
