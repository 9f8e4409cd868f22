"""Rule table_html_<table>: one Markdown table of the study as an HTML page for the report."""

from intraclass.runtime import script_logger

log = script_logger(snakemake.log[0])

from intraclass.report import write_table_html

log.info("wrote %s", write_table_html(snakemake.input.md, snakemake.output.html, snakemake.params.title))
