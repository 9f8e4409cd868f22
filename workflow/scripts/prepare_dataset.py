"""Rule prepare_dataset: build one dataset from its source and write results/data/{dataset}.npz.

params: name (dataset name), options (config datasets.<name>); output: npz (docs/stages.md).
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
set_threads(snakemake.threads)  # noqa: F821

from intraclass.data import prepare  # noqa: E402

name = snakemake.params.name  # noqa: F821
options = dict(snakemake.params.options)  # noqa: F821
log.info("dataset %s, options %s", name, options)
dataset = prepare(name, options, snakemake.output.npz)  # noqa: F821
log.info("done: %s", dataset.summary())
