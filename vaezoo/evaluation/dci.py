"""DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018).

One tree ensemble per factor predicts the factor's class from all codes; its feature importances form
the matrix R [D, F]. Disentanglement weights each code's 1 - H_F(R_d.) by the code's share of total
importance; completeness averages 1 - H_D(R_.f) the same way over factors; informativeness is the
predictors' test accuracy.

The default is disentanglement_lib's (Locatello et al. 2019): gradient-boosted trees with sklearn's
default settings (100 stages of depth-3 trees, leaves of at least one point). They are slow on a CPU
(one tree per class and stage: dSprites' 113 classes make 11,300 trees on 10,000 points, minutes).
``model=random_forest`` is the faster one (Eastwood & Williams' own predictor): every code is
considered at each split and leaves hold at least ``min_samples_leaf`` = 50 points, since with
sklearn's leaf of 1 its fully grown trees fit the noise and spread importance over noise codes (its
disentanglement fell 0.6 below the boosting's on factors plus noise of scale 0.5). Even so it does not
agree with the boosting on noisy codes (measured in docs/evaluation.md: 0.92 against 0.52 on factors
plus noise of scale 0.2), so its numbers are not comparable with published ones.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from vaezoo.errors import ConfigError
from vaezoo.evaluation.factor_sampling import codes_and_factors, rng_for
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported

PREDICTORS = ("gradient_boosting", "random_forest")
#: Each predictor's smallest leaf when ``min_samples_leaf`` is null: sklearn's 1 for the boosting (as
#: published), 50 for the forest (with 1 its trees fit the noise; see the module's docstring).
DEFAULT_LEAF = {"gradient_boosting": 1, "random_forest": 50}


def entropy_base(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of p (rows normalised to sum 1) in log base ``base``."""
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-11)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(1) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) from an importance matrix [D, F]."""
    d, f = importance.shape
    total = importance.sum()
    if total == 0:
        return 0.0, 0.0
    code_weight = importance.sum(1) / total
    disentanglement = float(((1 - entropy_base(importance, f)) * code_weight).sum()) if f > 1 else 1.0
    factor_weight = importance.sum(0) / total
    completeness = float(((1 - entropy_base(importance.T, d)) * factor_weight).sum()) if d > 1 else 1.0
    return disentanglement, completeness


def importance_matrix(
    train_codes: np.ndarray,
    train_factors: np.ndarray,
    test_codes: np.ndarray,
    test_factors: np.ndarray,
    predictor: str,
    n_estimators: int,
    seed: int,
    min_samples_leaf: int | None = None,
) -> tuple[np.ndarray, float, float]:
    """Importances [D, F] and mean train/test accuracy of one predictor per factor (``min_samples_leaf``
    None: the predictor's default, :data:`DEFAULT_LEAF`)."""
    leaf = DEFAULT_LEAF[predictor] if min_samples_leaf is None else min_samples_leaf
    importance = np.zeros((train_codes.shape[1], train_factors.shape[1]))
    train_acc, test_acc = [], []
    for j in range(train_factors.shape[1]):
        if predictor == "random_forest":
            # max_features=None: every split sees every code, so importance is not spread by chance.
            model = RandomForestClassifier(
                n_estimators=n_estimators,
                max_features=None,
                min_samples_leaf=leaf,
                random_state=seed,
                n_jobs=1,
            )
        else:
            model = GradientBoostingClassifier(
                n_estimators=n_estimators, min_samples_leaf=leaf, random_state=seed
            )
        model.fit(train_codes, train_factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_acc.append(model.score(train_codes, train_factors[:, j]))
        test_acc.append(model.score(test_codes, test_factors[:, j]))
    return importance, float(np.mean(train_acc)), float(np.mean(test_acc))


@register_metric(
    "dci",
    needs=("factors",),
    reports=[
        Reported("disentanglement", "higher", "score", "how much each code captures one factor only"),
        Reported("completeness", "higher", "score", "how much each factor is captured by one code only"),
        Reported("informativeness_train", "higher", "fraction", "training accuracy of factors from codes"),
        Reported("informativeness_test", "higher", "fraction", "test accuracy of factors from codes"),
    ],
    per_representation=True,
    encodes=lambda s: s["num_train"] + s["num_test"],
    num_train=10000,
    num_test=5000,
    model="gradient_boosting",
    n_estimators=100,
    min_samples_leaf=None,
)
def dci(
    context: MetricContext,
    num_train: int,
    num_test: int,
    model: str,
    n_estimators: int,
    min_samples_leaf: int | None,
) -> dict[str, float]:
    """DCI (Eastwood & Williams 2018): D, C and I from tree importances."""
    if model not in PREDICTORS:
        raise ConfigError(f"eval.settings.dci.model={model} is not one of {', '.join(PREDICTORS)}")
    if min_samples_leaf is not None and (
        isinstance(min_samples_leaf, bool) or not isinstance(min_samples_leaf, int) or min_samples_leaf < 1
    ):
        raise ConfigError(
            f"eval.settings.dci.min_samples_leaf={min_samples_leaf} must be an integer >= 1 or null "
            f"(null: {DEFAULT_LEAF['gradient_boosting']} for gradient_boosting, "
            f"{DEFAULT_LEAF['random_forest']} for random_forest)"
        )
    rng = rng_for(context, "dci")
    train_codes, train_factors = codes_and_factors(context, num_train, rng)
    test_codes, test_factors = codes_and_factors(context, num_test, rng)
    importance, train_acc, test_acc = importance_matrix(
        train_codes,
        train_factors,
        test_codes,
        test_factors,
        model,
        n_estimators,
        context.seed,
        min_samples_leaf,
    )
    disentanglement, completeness = dci_from_importance(importance)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness_train": train_acc,
        "informativeness_test": test_acc,
    }
