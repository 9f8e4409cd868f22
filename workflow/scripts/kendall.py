"""Rule kendall: granulated Kendall table (paper Tables 1-3) and the k curve of Fig. 4.

Contract: docs/stages.md, "collect / kendall / figure". Logic: intraclass.kendall.write_kendall.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])  # noqa: F821 - injected by Snakemake
set_threads(snakemake.threads)  # noqa: F821

from intraclass.kendall import to_markdown, write_kendall  # noqa: E402

params = snakemake.params  # noqa: F821
table = write_kendall(
    models_csv=snakemake.input.models,  # noqa: F821
    measures_csv=snakemake.input.measures,  # noqa: F821
    out_csv=snakemake.output.csv,  # noqa: F821
    out_md=snakemake.output.md,  # noqa: F821
    out_tex=snakemake.output.tex,  # noqa: F821
    out_k_curve=snakemake.output.k_curve,  # noqa: F821
    axes=list(params.axes) if params.get("axes") else None,
    generalization=params.get("generalization", "test_acc"),
    k=dict(params.get("k") or {}),
)
log.info("granulated Kendall coefficients:\n%s", to_markdown(table))
