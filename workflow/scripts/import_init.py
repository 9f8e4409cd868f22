"""Rule import_init: a zoo model's initial weights as init.pt (docs/zoo.md).
Logic: intraclass.zoo_import.import_init."""

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.zoo_import import import_init

import_init(snakemake.input.init, snakemake.input.model, snakemake.output.init, log=log)
