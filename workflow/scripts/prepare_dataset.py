"""Rule prepare_dataset: build one dataset from its source and write results/data/{dataset}.npz.

params: name (dataset name), options (config datasets.<name>), coarse_studies (the studies
trained on its superclasses: the data must give them superclasses of >= 2 fine classes);
output: npz and digest, the sha256 of its content (intraclass.data.format.content_digest;
docs/stages.md).
"""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.data import prepare

name = snakemake.params.name
options = dict(snakemake.params.options)
coarse_studies = list(snakemake.params.coarse_studies)
log.info("dataset %s, options %s, studies on its superclasses %s", name, options, coarse_studies)
dataset = prepare(name, options, snakemake.output.npz, snakemake.output.digest, coarse_studies)
log.info("done: %s", dataset.summary())
