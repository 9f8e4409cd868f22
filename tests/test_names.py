"""One definition per list of names (intraclass.names): every other module, the config
schema and the workflow's rules use these lists, and no source file spells them again."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import yaml

from intraclass import config, names, tables

REPO = Path(__file__).resolve().parents[1]


def test_hyperparameters_are_the_model_config_fields_and_the_table_columns():
    assert tuple(f.name for f in fields(config.ModelConfig)) == names.HYPERPARAMETERS
    assert tables.HPARAMS == names.HYPERPARAMETERS
    # the axes name hyperparameters; the rest (the seed) are the extra keys
    assert set(names.AXIS_COLUMNS.values()) | set(names.EXTRA_KEYS) == set(names.HYPERPARAMETERS)
    assert names.EXTRA_KEYS == ("seed",)
    model = config.ModelConfig(0.1, 0.0, 100, "sgd", 0.0, True, 1.0, 1.0, 0)
    assert list(model.to_dict())[1:] == list(names.HYPERPARAMETERS)


def test_training_uses_the_shared_keys():
    from intraclass import sharpness, train

    assert train.MODEL_KEYS == names.HYPERPARAMETERS
    assert config.RUN_ONLY["training"] == train.RESUME_NEUTRAL_KEYS
    assert sharpness.MEASURES == names.SHARPNESS == ("sigma1", "sigma2", "alpha1", "alpha2")
    assert tuple(sharpness.VARIANTS) == sharpness.MEASURES


def test_label_levels_are_shared_with_the_schema_and_the_data_format():
    from intraclass.data import format as data_format
    from intraclass.measures import table

    assert names.LABEL_LEVELS == ("fine", "coarse")
    assert data_format.LEVELS == table.LABELS == names.LABEL_LEVELS
    schema = (REPO / "config" / "schema.yaml").read_text()
    enums = re.findall(r"labels:\n\s+description: [^\n]*\n\s+enum: \[([^\]]*)\]", schema)
    assert enums and all(tuple(e.replace(" ", "").split(",")) == names.LABEL_LEVELS for e in enums)


def test_figure_ids_are_the_figure_modules_the_rules_and_the_schema_keys():
    from intraclass import figures

    assert tuple(figures.FIGURES) == names.FIGURE_IDS
    for fig, module in figures.FIGURES.items():
        assert callable(module.render) and isinstance(module.SETTINGS, dict), fig
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "figures" in node and isinstance(node["figures"], dict) and "properties" in node["figures"]:
                found.append(set(node["figures"]["properties"]))
            for value in node.values():
                walk(value)

    walk(schema)
    assert found and all(keys == {"style", *(f"fig{f}" for f in names.FIGURE_IDS)} for keys in found)
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert re.search(r"^FIGURES = FIGURE_IDS\b", common, re.MULTILINE)


def test_no_source_file_spells_a_shared_list_again():
    """The lists of names.py written out literally anywhere else in src/ or workflow/."""
    spelled = {
        "hyperparameters": re.compile(r'"lr",\s*"weight_decay",\s*"batch_size"'),
        "label levels": re.compile(r'\(\s*"fine",\s*"coarse"\s*\)'),
        "figure ids": re.compile(r'"3",\s*"4",\s*"5",\s*"6"'),
        "sharpness measures": re.compile(r'\(\s*"sigma1",\s*"sigma2",\s*"alpha1",\s*"alpha2"\s*\)'),
        "run-only training keys": re.compile(r'\(\s*"device",\s*"eval_batch_size",\s*"resume_every"\s*\)'),
    }
    owners = {"hyperparameters": "names.py", "label levels": "names.py", "figure ids": "names.py",
              "sharpness measures": "names.py", "run-only training keys": "config.py"}
    files = [*(REPO / "src").rglob("*.py"), *(REPO / "workflow").rglob("*.py"),
             *(REPO / "workflow").rglob("*.smk")]
    found = [(what, str(path.relative_to(REPO))) for path in files for what, pattern in spelled.items()
             if path.name != owners[what] and pattern.search(path.read_text())]
    assert not found, found
