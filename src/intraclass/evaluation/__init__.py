"""How well each measure predicts generalization: the study's evaluation tables.

- :mod:`intraclass.kendall`: the oriented granulated Kendall coefficient (paper Sec. 3.2,
  Tables 1-3) and the k curves of Figure 4;
- :mod:`intraclass.evaluation.bootstrap`: percentile intervals for every Kendall cell and
  every k, from a paired bootstrap over test images;
- :mod:`intraclass.evaluation.cmi`: the conditional mutual information score of Jiang et
  al. (2020, Sec. 4) and the variant of the PGDL competition;
- :mod:`intraclass.evaluation.notes`: what every table's note says (noise floor, excluded
  models, searches that ended on a bound, devices);
- :mod:`intraclass.evaluation.tables`: the ``kendall`` stage that writes them all;
- :mod:`intraclass.evaluation.paper`: the paper's tables beside this run's.

docs/criteria.md gives the definitions with their equations.
"""
