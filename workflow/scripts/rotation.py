"""Rule rotation: the layer rotation curves of one model (final and evolution checkpoints);
see docs/measures.md.

A model whose training diverged (metrics.json status) gets a JSON with its status and a
null rotation instead of curves (intraclass.status)."""

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
    metrics_path=snakemake.input.metrics,
)
log.info("wrote %s (status %s): rotation=%s", snakemake.output.json, result["status"],
         result["measures"]["rotation"]["value"])
