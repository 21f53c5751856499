//! Per-sample classification losses that attacks increase.
use tch::{Kind, Reduction, Tensor};

/// Cross-entropy of each sample, `[N]`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::None, -100, 0.0)
}

/// The difference-of-logits-ratio loss of Croce & Hein (2020):
/// −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 10⁻¹²), with z sorted decreasingly as z_π1 ≥ z_π2 ≥ z_π3.
/// Positive exactly when the sample is misclassified; invariant to shifting and scaling logits.
pub fn dlr(logits: &Tensor, labels: &Tensor) -> Tensor {
    let (sorted, _) = logits.sort(-1, true);
    let true_logit = logits.gather(1, &labels.unsqueeze(1), false).squeeze_dim(1);
    let top = sorted.select(1, 0);
    let second = sorted.select(1, 1);
    let top_is_true = logits
        .argmax(-1, false)
        .eq_tensor(labels)
        .to_kind(Kind::Float);
    let best_other: Tensor = &second * &top_is_true + &top * (1.0 - &top_is_true);
    let spread: Tensor = &top - sorted.select(1, 2) + 1e-12;
    (best_other - true_logit) / spread
}

/// The targeted DLR loss of Croce & Hein (2020), APGD-T's objective:
/// −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 10⁻¹²). Positive when the target t outscores the
/// true class y. Needs at least four classes.
pub fn targeted_dlr(logits: &Tensor, labels: &Tensor, targets: &Tensor) -> Tensor {
    let (sorted, _) = logits.sort(-1, true);
    let true_logit = logits.gather(1, &labels.unsqueeze(1), false).squeeze_dim(1);
    let target_logit = logits
        .gather(1, &targets.unsqueeze(1), false)
        .squeeze_dim(1);
    let spread: Tensor =
        sorted.select(1, 0) - (sorted.select(1, 2) + sorted.select(1, 3)) * 0.5 + 1e-12;
    (target_logit - true_logit) / spread
}

/// The negative margin max_{i≠y} z_i − z_y, Square's objective: positive exactly when the
/// sample is misclassified.
pub fn negative_margin(logits: &Tensor, labels: &Tensor) -> Tensor {
    let true_logit = logits.gather(1, &labels.unsqueeze(1), false);
    let others = logits.scatter_value(1, &labels.unsqueeze(1), f64::NEG_INFINITY);
    others.amax([1], false) - true_logit.squeeze_dim(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlr_matches_hand_computation() {
        let logits = Tensor::from_slice(&[3.0f32, 1.0, 0.0, -1.0, 0.5, 2.0, 4.0, 0.0]).view([2, 4]);
        let labels = Tensor::from_slice(&[0i64, 1]);
        let loss = dlr(&logits, &labels);
        // Sample 0: correct, margin 3 − 1 = 2, spread 3 − 0 = 3 → −2/3.
        assert!((loss.double_value(&[0]) + 2.0 / 3.0).abs() < 1e-6);
        // Sample 1: true 2, best other 4, spread 4 − 0.5 = 3.5 → 2/3.5.
        assert!((loss.double_value(&[1]) - 2.0 / 3.5).abs() < 1e-6);
        let ce = cross_entropy(&logits, &labels);
        let expected = -logits.log_softmax(-1, Kind::Float).double_value(&[0, 0]);
        assert!((ce.double_value(&[0]) - expected).abs() < 1e-6);
        assert_eq!(ce.size(), [2]);
    }

    #[test]
    fn targeted_dlr_and_margin_match_hand_computation() {
        let logits = Tensor::from_slice(&[3.0f32, 1.0, 0.0, -1.0, 0.5, 2.0, 4.0, 0.0]).view([2, 4]);
        let labels = Tensor::from_slice(&[0i64, 1]);
        let targets = Tensor::from_slice(&[1i64, 2]);
        let loss = targeted_dlr(&logits, &labels, &targets);
        // Sample 0: −(3 − 1) / (3 − (0 − 1)/2) = −2/3.5.
        assert!((loss.double_value(&[0]) + 2.0 / 3.5).abs() < 1e-6);
        // Sample 1: −(2 − 4) / (4 − (0.5 + 0)/2) = 2/3.75.
        assert!((loss.double_value(&[1]) - 2.0 / 3.75).abs() < 1e-6);
        let margin = negative_margin(&logits, &labels);
        assert!((margin.double_value(&[0]) + 2.0).abs() < 1e-6);
        assert!((margin.double_value(&[1]) - 2.0).abs() < 1e-6);
    }
}
