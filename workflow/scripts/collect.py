"""Rule collect: one table per study (models.csv) and all tidy measure rows (measures.csv.gz).

Contract: docs/stages.md, "collect / kendall / figure". Logic: intraclass.tables.collect.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])  # noqa: F821 - injected by Snakemake
set_threads(snakemake.threads)  # noqa: F821

from intraclass.tables import collect  # noqa: E402

models = list(snakemake.params.models)  # noqa: F821
log.info("collecting %d models", len(models))
table = collect(
    models=models,
    metrics=list(snakemake.input.metrics),  # noqa: F821
    measures=list(snakemake.input.get("measures", [])),  # noqa: F821
    sharpness=list(snakemake.input.get("sharpness", [])),  # noqa: F821
    k=dict(snakemake.params.k),  # noqa: F821
    out_models=snakemake.output.models,  # noqa: F821
    out_measures=snakemake.output.measures,  # noqa: F821
)
log.info("wrote %s (%d rows, %d columns)", snakemake.output.models, *table.shape)  # noqa: F821
