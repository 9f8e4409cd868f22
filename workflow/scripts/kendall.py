"""Rule kendall: the oriented granulated Kendall table with bootstrap intervals (paper Tables
1-3), the k curves of Fig. 4 and the CMI table.

Contract: docs/stages.md, "collect / kendall / figure"; definitions: docs/criteria.md.
Logic: intraclass.evaluation.tables.write_evaluation.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

# plug-in measures (the study's measures.plugins) register before anything reads the registry
from intraclass.measures import registry

registry.load_plugins(registry.script_plugins(snakemake))

from intraclass.evaluation.tables import write_evaluation
from intraclass.kendall import to_markdown

params = snakemake.params
analysis = dict(params.get("analysis") or {})
table, cmi = write_evaluation(
    models_csv=snakemake.input.models,
    measures_csv=snakemake.input.measures,
    correct_npz=snakemake.input.get("correct") or None,
    out={name: snakemake.output[name] for name in ("csv", "md", "tex", "k_curve", "cmi_csv", "cmi_md", "cmi_tex")},
    # a list of the paper's axis names, or a zoo's {label: column} (intraclass.kendall.axis_columns)
    axes=(dict(params.axes) if isinstance(params.get("axes"), dict) else list(params.get("axes") or [])) or None,
    generalization=analysis.get("generalization", "test_acc"),
    k=dict(params.get("k") or {}),
    bootstrap_settings=analysis.get("bootstrap"),
    cmi_variant=(analysis.get("cmi") or {}).get("variant", "jiang"),
    sharpness=params.get("sharpness"),  # the keys that decide the search target, or None
    min_train_acc=analysis.get("min_train_acc"),
)
log.info("granulated Kendall coefficients:\n%s", to_markdown(table))
log.info("conditional mutual information:\n%s", to_markdown(cmi))
