# The study's tables as HTML pages for `snakemake --report`: a CSV or Markdown file marked
# for the report is only a download link there, an HTML page opens inline. Local rules:
# they read one small Markdown file each.


# Every Markdown table rule kendall writes (tables/kendall.md, tables/cmi.md, ...), with the
# report's label for it (the file name where none is given here).
TABLE_LABELS = {"kendall": "granulated Kendall", "cmi": "conditional mutual information"}
REPORT_TABLES = {
    Path(f).stem: TABLE_LABELS.get(Path(f).stem, Path(f).stem) for f in rules.kendall.output if f.endswith(".md")
}


for _table in REPORT_TABLES:

    rule:
        name:
            f"table_html_{_table}"
        input:
            md=f"{RESULTS}/{{study}}/tables/{_table}.md",
        output:
            html=report(
                f"{RESULTS}/{{study}}/tables/{_table}.html",
                caption=f"../report/{_table}.rst",
                category="Tables",
                subcategory="{study}",
                labels={"table": REPORT_TABLES[_table]},
            ),
        log:
            f"{RESULTS}/logs/{{study}}/tables/{_table}_html.log",
        localrule: True
        conda:
            ENV
        threads: 1
        resources:
            runtime=rule_resources("analysis")["runtime"],
            mem_mb=rule_resources("analysis")["mem_mb"],
        params:
            title=lambda wc, table=_table: f"{REPORT_TABLES[table][:1].upper()}{REPORT_TABLES[table][1:]}: study {wc.study}",
            # what the captions (workflow/report/<table>.rst) show, as in rule kendall
            k=lambda wc: study(wc).settings["measures"]["k"],
            generalization=lambda wc: study(wc).settings["analysis"]["generalization"],
            analysis=lambda wc: study(wc).settings["analysis"],
        script:
            "../scripts/table_html.py"
