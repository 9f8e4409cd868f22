"""Rule figure_{fig}: one figure of the paper (3, 4, 5, 6, 7, 8 or 11) as PDF and PNG.

Contract: docs/stages.md, "collect / kendall / figure". Logic: intraclass.figures.make_figure
(style keys: intraclass.figures.style; settings: the module of each figure).
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])  # noqa: F821 - injected by Snakemake
set_threads(snakemake.threads)  # noqa: F821

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # cluster nodes have no display

from intraclass.figures import make_figure  # noqa: E402

params = snakemake.params  # noqa: F821
make_figure(
    fig=params.fig,
    models_csv=snakemake.input.models,  # noqa: F821
    measures_csv=snakemake.input.get("measures"),  # noqa: F821
    kendall_k_csv=snakemake.input.get("kendall_k"),  # noqa: F821
    out_pdf=snakemake.output.pdf,  # noqa: F821
    out_png=snakemake.output.png,  # noqa: F821
    stores=list(snakemake.input.get("stores", [])),  # noqa: F821
    checkpoints=list(params.get("checkpoints") or []),
    style=dict(params.get("style") or {}),
    settings=dict(params.get("settings") or {}),
    generalization=params.get("generalization", "test_acc"),
)
