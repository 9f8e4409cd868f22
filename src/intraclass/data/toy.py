"""Two small datasets with a superclass hierarchy, for tests and quick studies.

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, no download),
  grouped by shape into three superclasses (see :data:`DIGIT_GROUPS`).
- ``synthetic``: a seeded generator of small images whose subclass structure is known
  by construction (see :func:`make_synthetic`).
"""

from __future__ import annotations

import numpy as np

from intraclass.data.format import Dataset, stratified_indices

# Superclasses of the digits by the shape of their strokes: digits with a closed loop,
# digits drawn with straight strokes only, and digits made of open curves. (A 4 may be
# drawn closed, a 9 open; the grouping needs only to be fixed and roughly visual.)
DIGIT_GROUPS = {
    "loops": (0, 6, 8, 9),
    "strokes": (1, 4, 7),
    "curves": (2, 3, 5),
}
DIGITS_MAX = 16  # load_digits pixel values are counts 0..16 (4x4 blocks of a 32x32 bitmap)


def load_digits_dataset(test_per_class: int = 30, seed: int = 0) -> Dataset:
    """scikit-learn's digits as 8x8x1 uint8 images (0..16 scaled to 0..255), with superclasses.

    The test split takes ``test_per_class`` images of each digit (seeded, stratified), the
    training split the rest (about 150 per digit).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.rint(digits.images * (255 / DIGITS_MAX)).astype(np.uint8)[..., None]  # (1797, 8, 8, 1)
    y = digits.target.astype(np.int64)
    fine_to_coarse = np.empty(10, dtype=np.int64)
    for s, members in enumerate(DIGIT_GROUPS.values()):
        fine_to_coarse[list(members)] = s
    test = stratified_indices(y, test_per_class, seed)
    train = np.setdiff1d(np.arange(len(y)), test)
    return Dataset(
        x_train=x[train], x_test=x[test], y_train=y[train], y_test=y[test],
        coarse_train=fine_to_coarse[y[train]], coarse_test=fine_to_coarse[y[test]],
        fine_names=[str(d) for d in range(10)], coarse_names=list(DIGIT_GROUPS),
    )


SUBCLASS_SCALE = 0.6  # amplitude of a subclass pattern relative to its superclass pattern
NOISE = 0.5  # per-pixel sample noise, same units
PIXEL_SCALE = 32.0  # grey levels per unit: 128 +- 3 standard deviations stays in 0..255


def make_synthetic(
    seed: int = 0,
    n_super: int = 3,
    n_sub: int = 3,
    per_class: int = 50,
    test_per_class: int = 20,
    size: int = 8,
    channels: int = 1,
) -> Dataset:
    """Seeded images with a known two-level hierarchy.

    Superclass s has a random pattern P_s, and each of its subclasses j an offset pattern
    Q_sj of relative amplitude 0.6 (all patterns i.i.d. standard normal per pixel and
    channel); a sample of subclass (s, j) is P_s + Q_sj + 0.5 noise, shown as grey levels
    128 + 32 * value, clipped to 0..255. Samples of a superclass therefore form one cluster
    per subclass, and the subclasses separate from each other inside the superclass
    (distance between subclass means ~0.6 * sqrt(2 * pixels) against noise 0.5 per
    direction). Fine label ``s * n_sub + j``, coarse label ``s``.
    """
    for name, value, low in (("n_super", n_super, 2), ("n_sub", n_sub, 1), ("per_class", per_class, 1),
                             ("test_per_class", test_per_class, 1), ("size", size, 1),
                             ("channels", channels, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"synthetic: {name} must be an integer >= {low}, not {value!r}")
    rng = np.random.default_rng(seed)
    shape = (size, size, channels)
    super_patterns = rng.standard_normal((n_super, *shape))
    sub_patterns = super_patterns[:, None] + SUBCLASS_SCALE * rng.standard_normal((n_super, n_sub, *shape))
    means = sub_patterns.reshape(n_super * n_sub, *shape)  # (fine classes, H, W, C)

    def split(n_per_class: int):
        y = rng.permutation(np.repeat(np.arange(n_super * n_sub, dtype=np.int64), n_per_class))
        values = means[y] + NOISE * rng.standard_normal((len(y), *shape))
        x = np.clip(np.rint(128 + PIXEL_SCALE * values), 0, 255).astype(np.uint8)
        return x, y, y // n_sub

    x_train, y_train, c_train = split(per_class)
    x_test, y_test, c_test = split(test_per_class)
    return Dataset(
        x_train=x_train, x_test=x_test, y_train=y_train, y_test=y_test,
        coarse_train=c_train, coarse_test=c_test,
        fine_names=[f"super{s}-sub{j}" for s in range(n_super) for j in range(n_sub)],
        coarse_names=[f"super{s}" for s in range(n_super)],
    )
