"""Rule collect: one table per study (models.csv), all tidy measure rows (measures.csv.gz)
and the per-example test correctness of every model (test_correct.npz).

Contract: docs/stages.md, "collect / kendall / figure". Logic: intraclass.tables.collect.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

# plug-in measures (the study's measures.plugins) register before anything reads the registry
from intraclass.measures import registry

registry.load_plugins(registry.script_plugins(snakemake))

from intraclass.tables import collect

models = list(snakemake.params.models)
log.info("collecting %d models", len(models))
# every model-level stage of the measure registry, by its input name (= the stage's name)
stages = {stage: list(snakemake.input.get(stage, [])) for stage in registry.stages()
          if stage not in (registry.ACTIVATION_STAGE, "sharpness")}
table = collect(
    models=models,
    metrics=list(snakemake.input.metrics),
    measures=list(snakemake.input.get("measures", [])),
    sharpness=list(snakemake.input.get("sharpness", [])),
    k=dict(snakemake.params.k),
    out_models=snakemake.output.models,
    out_measures=snakemake.output.measures,
    stages=stages,
    measures_status=list(snakemake.input.measures_status),
    test_correct=list(snakemake.input.test_correct),
    out_correct=snakemake.output.correct,
)
log.info("wrote %s (%d rows, %d columns)", snakemake.output.models, *table.shape)
