"""DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018).

One tree ensemble per factor predicts the factor's class from all codes; its feature importances form
the matrix R [D, F]. Disentanglement weights each code's 1 - H_F(R_d.) by the code's share of total
importance; completeness averages 1 - H_D(R_.f) the same way over factors; informativeness is the
predictors' test accuracy. disentanglement_lib uses gradient-boosted trees (sklearn's default
settings); the default here is a random forest (as in Eastwood & Williams' own code, and fast on two
cores); ``model=gradient_boosting`` reproduces disentanglement_lib's choice.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from vaezoo.errors import ConfigError
from vaezoo.evaluation.factor_sampling import codes_and_factors, rng_for
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported

PREDICTORS = ("random_forest", "gradient_boosting")


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
) -> tuple[np.ndarray, float, float]:
    """Importances [D, F] and mean train/test accuracy of one predictor per factor."""
    importance = np.zeros((train_codes.shape[1], train_factors.shape[1]))
    train_acc, test_acc = [], []
    for j in range(train_factors.shape[1]):
        if predictor == "random_forest":
            # max_features=None: every split sees every code, so importance is not spread by chance.
            model = RandomForestClassifier(
                n_estimators=n_estimators, max_features=None, random_state=seed, n_jobs=1
            )
        else:
            model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
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
    num_train=10000,
    num_test=5000,
    model="random_forest",
    n_estimators=50,
)
def dci(
    context: MetricContext, num_train: int, num_test: int, model: str, n_estimators: int
) -> dict[str, float]:
    """DCI (Eastwood & Williams 2018): D, C and I from tree importances."""
    if model not in PREDICTORS:
        raise ConfigError(f"eval.settings.dci.model={model} is not one of {', '.join(PREDICTORS)}")
    rng = rng_for(context, "dci")
    train_codes, train_factors = codes_and_factors(context, num_train, rng)
    test_codes, test_factors = codes_and_factors(context, num_test, rng)
    importance, train_acc, test_acc = importance_matrix(
        train_codes, train_factors, test_codes, test_factors, model, n_estimators, context.seed
    )
    disentanglement, completeness = dci_from_importance(importance)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness_train": train_acc,
        "informativeness_test": test_acc,
    }
