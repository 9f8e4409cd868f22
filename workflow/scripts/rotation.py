"""Rule rotation: the layer rotation curves of one model (final and evolution checkpoints);
see docs/measures.md."""

from pathlib import Path

from intraclass.runtime import script_logger, set_threads

log = script_logger(snakemake.log[0])
set_threads(snakemake.threads)

from intraclass.measures.rotation import run_rotation

ckpt = Path(snakemake.input.ckpt)
result = run_rotation(
    init_path=snakemake.input.init,
    model_path=snakemake.input.model,
    out_path=snakemake.output.json,
    checkpoints={f"epoch{e}": ckpt / f"epoch{e}.pt" for e in snakemake.params.epochs},
    log=log,
)
log.info("wrote %s: rotation=%s", snakemake.output.json, result["measures"]["rotation"]["value"])
