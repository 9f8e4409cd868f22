"""intraclass: reproduce and extend "Intraclass clustering: an implicit learning ability
that regularizes DNNs" (Carbonnelle & De Vleeschouwer, ICLR 2021).

Stages (one module each): data, models, train, activations, measures, sharpness,
kendall, tables, figures. Workflow glue: config (schema, defaults, grid), runtime
(logging, device, threads for the thin scripts in workflow/scripts).
"""

__version__ = "0.1.0"
