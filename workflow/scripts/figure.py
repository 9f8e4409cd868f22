"""Rule figure_{fig}: one figure of the paper (3, 4, 5, 6, 7, 8 or 11) as PDF and PNG.

Contract: docs/stages.md, "collect / kendall / figure". Logic: intraclass.figures.make_figure
(style keys: intraclass.figures.style; settings: the module of each figure).
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

# plug-in measures (the study's measures.plugins) register before anything reads the registry
from intraclass.measures import registry

registry.load_plugins(registry.script_plugins(snakemake))

import matplotlib

matplotlib.use("Agg")  # cluster nodes have no display

from intraclass.figures import make_figure

params = snakemake.params
make_figure(
    fig=params.fig,
    models_csv=snakemake.input.models,
    measures_csv=snakemake.input.get("measures"),
    kendall_k_csv=snakemake.input.get("kendall_k"),
    out_pdf=snakemake.output.pdf,
    out_png=snakemake.output.png,
    stores=list(snakemake.input.get("stores", [])),
    checkpoints=list(params.get("checkpoints") or []),
    style=dict(params.get("style") or {}),
    settings=dict(params.get("settings") or {}),
    generalization=params.get("generalization", "test_acc"),
    correct_npz=snakemake.input.get("correct") or None,
)
