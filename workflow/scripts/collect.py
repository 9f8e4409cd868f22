"""Rule collect: one table per study (models.csv) and all tidy measure rows (measures.csv.gz).

Contract: docs/stages.md, "collect / kendall / figure". Logic: intraclass.tables.collect.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.tables import collect

models = list(snakemake.params.models)
log.info("collecting %d models", len(models))
table = collect(
    models=models,
    metrics=list(snakemake.input.metrics),
    measures=list(snakemake.input.get("measures", [])),
    sharpness=list(snakemake.input.get("sharpness", [])),
    k=dict(snakemake.params.k),
    out_models=snakemake.output.models,
    out_measures=snakemake.output.measures,
)
log.info("wrote %s (%d rows, %d columns)", snakemake.output.models, *table.shape)
