import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

from mixlib.metrics import classification_metrics


@pytest.fixture
def predictions():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (200,), generator=generator)
    logits = torch.randn(200, 4, generator=generator) + 2.0 * torch.nn.functional.one_hot(labels, 4)
    return logits, labels


def test_matches_scikit_learn(predictions):
    logits, labels = predictions
    metrics = classification_metrics(logits, labels, 4)
    predicted = logits.argmax(1).numpy()
    truth = labels.numpy()
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert metrics["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-6)
    assert metrics["macro_precision"] == pytest.approx(
        precision_score(truth, predicted, average="macro"), abs=1e-6
    )
    assert metrics["macro_recall"] == pytest.approx(recall_score(truth, predicted, average="macro"), abs=1e-6)
    matrix = confusion_matrix(truth, predicted)
    assert metrics["confusion_matrix"] == matrix.tolist()
    false_positives = matrix.sum(axis=0) - np.diag(matrix)
    true_negatives = matrix.sum() - matrix.sum(axis=0) - matrix.sum(axis=1) + np.diag(matrix)
    assert metrics["macro_fpr"] == pytest.approx(
        np.mean(false_positives / (false_positives + true_negatives))
    )


def test_expected_calibration_error_of_overconfident_model():
    # always 90% confident, right half of the time: one bin, |0.9 - 0.5| = 0.4
    labels = torch.tensor([0, 1] * 50)
    logits = torch.log(torch.tensor([[0.9, 0.1]])).repeat(100, 1)
    assert classification_metrics(logits, labels, 2)["ece"] == pytest.approx(0.4, abs=1e-5)


def test_expected_calibration_error_of_calibrated_model():
    labels = torch.tensor([0] * 90 + [1] * 10)
    logits = torch.log(torch.tensor([[0.9, 0.1]])).repeat(100, 1)
    assert classification_metrics(logits, labels, 2)["ece"] == pytest.approx(0.0, abs=1e-5)
