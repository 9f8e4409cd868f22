"""Test-only hook for tests/test_slurm.py: makes one model's training outlast its time limit.

Python imports ``sitecustomize`` at start-up from the first directory of ``sys.path``
holding one; the SLURM test puts this directory on ``PYTHONPATH`` (the jobs inherit the
environment), so it runs in every job of that test and nowhere else. When
INTRACLASS_TEST_SLOW_MODEL names a model id, that model's training sleeps
INTRACLASS_TEST_SLEEP_S seconds after its first epoch, i.e. after resume.pt holds epoch 1
(intraclass.train.train calls ``on_epoch_end`` after each epoch's resume point). SLURM
kills the job at its time limit during the sleep; the retry resumes after epoch 1 and,
starting at epoch 2, never calls ``on_epoch_end(1)`` again, so it does not sleep.
"""

import importlib.abc
import importlib.util
import os
import sys
import time

SLOW_MODEL = os.environ.get("INTRACLASS_TEST_SLOW_MODEL")
SLEEP_S = float(os.environ.get("INTRACLASS_TEST_SLEEP_S", "0"))


def _slowed(train):
    """``intraclass.train.train`` that sleeps after epoch 1 of the model SLOW_MODEL."""

    def wrapper(*args, **kwargs):
        params = kwargs.get("model_params") if "model_params" in kwargs else args[1]
        if params.get("id") == SLOW_MODEL:
            chained = kwargs.get("on_epoch_end")

            def on_epoch_end(epoch):
                if chained is not None:
                    chained(epoch)
                if epoch == 1:
                    print(f"test hook: sleeping {SLEEP_S:g} s after epoch 1", file=sys.stderr, flush=True)
                    time.sleep(SLEEP_S)

            kwargs["on_epoch_end"] = on_epoch_end
        return train(*args, **kwargs)

    return wrapper


class _PatchTrain(importlib.abc.MetaPathFinder):
    """Wraps ``train`` once intraclass.train is imported (run_training looks it up at call time)."""

    def find_spec(self, name, path, target=None):
        if name != "intraclass.train":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            module.train = _slowed(module.train)

        spec.loader.exec_module = exec_and_patch
        return spec


if SLOW_MODEL and SLEEP_S > 0:
    sys.meta_path.insert(0, _PatchTrain())
