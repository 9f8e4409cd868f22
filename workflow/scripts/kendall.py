"""Rule kendall: granulated Kendall table (paper Tables 1-3) and the k curve of Fig. 4.

Contract: docs/stages.md, "collect / kendall / figure". Logic: intraclass.kendall.write_kendall.
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.kendall import to_markdown, write_kendall

params = snakemake.params
table = write_kendall(
    models_csv=snakemake.input.models,
    measures_csv=snakemake.input.measures,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    out_tex=snakemake.output.tex,
    out_k_curve=snakemake.output.k_curve,
    axes=list(params.axes) if params.get("axes") else None,
    generalization=params.get("generalization", "test_acc"),
    k=dict(params.get("k") or {}),
)
log.info("granulated Kendall coefficients:\n%s", to_markdown(table))
