"""Separated Attribute Predictability (Kumar et al. 2018), disentanglement_lib's protocol: for discrete
factors, a linear SVM (C = 0.01, balanced classes) per (code, factor) pair predicts the factor from
that single code; SAP is the mean over factors of the gap between the two most predictive codes."""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from vaezoo.evaluation.factor_sampling import codes_and_factors, rng_for
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported


def sap_score_matrix(
    train_codes: np.ndarray,
    train_factors: np.ndarray,
    test_codes: np.ndarray,
    test_factors: np.ndarray,
    c: float,
) -> np.ndarray:
    """Test accuracy [D, F] of predicting factor j from code i alone."""
    scores = np.zeros((train_codes.shape[1], train_factors.shape[1]))
    for i in range(train_codes.shape[1]):
        for j in range(train_factors.shape[1]):
            if np.ptp(train_codes[:, i]) == 0:  # a constant code predicts nothing (the SVM would refuse it)
                scores[i, j] = np.mean(test_factors[:, j] == np.bincount(train_factors[:, j]).argmax())
                continue
            svm = LinearSVC(C=c, class_weight="balanced")
            svm.fit(train_codes[:, i : i + 1], train_factors[:, j])
            scores[i, j] = np.mean(svm.predict(test_codes[:, i : i + 1]) == test_factors[:, j])
    return scores


def sap_from_matrix(scores: np.ndarray) -> float:
    top = np.sort(scores, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


@register_metric(
    "sap",
    needs=("factors",),
    per_representation=True,
    encodes=lambda s: s["num_train"] + s["num_test"],
    reports=[
        Reported("value", "higher", "score", "mean predictability gap of the two best codes per factor")
    ],
    num_train=10000,
    num_test=5000,
    svm_c=0.01,
    standardise=False,
)
def sap(context: MetricContext, num_train: int, num_test: int, svm_c: float, standardise: bool) -> float:
    """SAP score (Kumar et al. 2018): mean gap in single-code predictability between the two best codes."""
    rng = rng_for(context, "sap")
    train_codes, train_factors = codes_and_factors(context, num_train, rng)
    test_codes, test_factors = codes_and_factors(context, num_test, rng)
    # disentanglement_lib's SVM sees the raw codes (C = 0.01 then weighs differently per latent scale:
    # codes of scale 0.01 score ~0); standardise=true makes C mean the same for every scale.
    mean, std = train_codes.mean(0), train_codes.std(0)
    std[std == 0] = 1
    if not standardise:
        mean, std = np.zeros_like(mean), np.ones_like(std)
    matrix = sap_score_matrix(
        (train_codes - mean) / std, train_factors, (test_codes - mean) / std, test_factors, svm_c
    )
    return sap_from_matrix(matrix)
