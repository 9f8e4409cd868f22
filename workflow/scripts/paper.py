"""Rule paper_vs_run: the paper's Table 1, 2 or 3 next to the study's own Kendall table.

Logic: intraclass.evaluation.paper.write_paper_vs_run; the HTML page for the report:
intraclass.report.write_table_html.
"""

from intraclass.runtime import script_logger

log = script_logger(snakemake.log[0])

from intraclass.evaluation.paper import write_paper_vs_run
from intraclass.report import write_table_html
from intraclass.sharpness_settings import target_description

params = snakemake.params
out = snakemake.output
table = write_paper_vs_run(
    snakemake.input.kendall,
    snakemake.input.models,
    {"csv": out.csv, "md": out.md},
    study=snakemake.wildcards.study,
    dataset=params.dataset,
    arch=params.arch,
    labels=params.labels,
    k=dict(params.k),
    c4_active=params.c4_active,
    # the settings that decide the sharpness target, None without sharpness (common.smk)
    sharpness_note=target_description(dict(params.sharpness)) if params.sharpness is not None else None,
)
title = f"paper Table {params.paper_table} vs this run: study {snakemake.wildcards.study}"
log.info("wrote %s, %s and %s (%d rows)", out.csv, out.md, write_table_html(out.md, out.html, title), len(table))
