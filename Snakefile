# intraclass: "Intraclass clustering: an implicit learning ability that regularizes DNNs"
# (Carbonnelle & De Vleeschouwer, ICLR 2021), end to end. Contents page only: the logic
# lives in src/intraclass, the stages in workflow/rules, the contracts in docs/stages.md.
#
#   snakemake --cores 2                                  # the default study (config/config.yaml)
#   snakemake --profile slurm --configfile config/paper.yaml   # the paper's three studies

from snakemake.utils import min_version

min_version("9.0")


# The default study, unless config files are given on the command line: those are then
# complete by themselves (`--configfile config/paper.yaml` runs the paper's studies only,
# not the default study merged in). `--config key=value` still overrides single keys.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/zoo.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/measures.smk"
include: "workflow/rules/sharpness.smk"
include: "workflow/rules/blackbox.smk"
include: "workflow/rules/rotation.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
        paper_targets(),
