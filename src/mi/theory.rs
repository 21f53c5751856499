//! The paper's theorems in closed form (SPEC §1): the Theorem 3.4 bound on robust accuracy, and
//! Theorem 3.2's exact risk, adversarial risk and representation vulnerability for the binary
//! Gaussian mixture with the representation g(x) = sign(wᵀx).
use crate::attack::Norm;
use std::f64::consts::{LN_2, SQRT_2};

/// Standard normal CDF Φ.
pub fn normal_cdf(t: f64) -> f64 {
    0.5 * libm::erfc(-t / SQRT_2)
}

/// Binary entropy in nats.
pub fn binary_entropy(p: f64) -> f64 {
    let h = |q: f64| if q <= 0.0 { 0.0 } else { -q * q.ln() };
    h(p) + h(1.0 - p)
}

/// Theorem 3.4: with balanced classes, no classifier on top of g has robust accuracy above
/// (I_wc(g) + ln 2) / ln |𝒴| (capped at 1).
pub fn robust_accuracy_bound(worst_case_mi: f64, num_classes: usize) -> f64 {
    ((worst_case_mi.max(0.0) + LN_2) / (num_classes as f64).ln()).min(1.0)
}

/// The bound as a curve over worst-case MI from `from` to `to` nats (51 points), for plots.
pub fn bound_curve(from: f64, to: f64, num_classes: usize) -> Vec<(f64, f64)> {
    (0..=50)
        .map(|i| {
            let mi = from + (to - from) * i as f64 / 50.0;
            (mi, robust_accuracy_bound(mi, num_classes))
        })
        .collect()
}

/// Theorem 3.2's quantities for one mixture, representation and threat.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MixtureTheory {
    pub risk: f64,
    pub adversarial_risk: f64,
    /// The representation vulnerability RV_ε = H₂(½) − H₂(½ − P/2), P = Φ(a+b) − Φ(a−b).
    pub vulnerability: f64,
}

/// `theta` and per-coordinate standard deviations `sigma` of x ~ N(yθ, diag(σ²)); `w` the
/// direction of g(x) = sign(wᵀx) (normalised here); ε-ball in `norm`.
pub fn gaussian_mixture(
    theta: &[f64],
    sigma: &[f64],
    w: &[f64],
    eps: f64,
    norm: Norm,
) -> MixtureTheory {
    let w_norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
    let w: Vec<f64> = w.iter().map(|v| v / w_norm).collect();
    let spread = w
        .iter()
        .zip(sigma)
        .map(|(w, s)| (w * s).powi(2))
        .sum::<f64>()
        .sqrt();
    let a = w.iter().zip(theta).map(|(w, t)| w * t).sum::<f64>() / spread;
    // The dual norm of the threat's: ℓ1 for ℓ∞, ℓ2 for ℓ2.
    let dual = match norm {
        Norm::Linf => w.iter().map(|v| v.abs()).sum::<f64>(),
        Norm::L2 => 1.0,
    };
    let b = eps * dual / spread;
    let p = normal_cdf(a + b) - normal_cdf(a - b);
    MixtureTheory {
        risk: normal_cdf(-a),
        adversarial_risk: normal_cdf(b - a),
        vulnerability: binary_entropy(0.5) - binary_entropy(0.5 - p / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::GaussianMixture;
    use tch::Kind;

    #[test]
    fn theorem_3_4_matches_the_papers_numbers() {
        // ln 2 / ln 10 = 30.1 %.
        assert!((robust_accuracy_bound(0.0, 10) - 0.301).abs() < 5e-4);
        assert!((robust_accuracy_bound(1.08, 10) - 0.770).abs() < 5e-4);
        assert_eq!(robust_accuracy_bound(5.0, 10), 1.0);
        assert!((robust_accuracy_bound(0.0, 2) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn normal_cdf_and_entropy_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-15);
        assert!((normal_cdf(1.959_963_985) - 0.975).abs() < 1e-9);
        assert!((binary_entropy(0.5) - LN_2).abs() < 1e-15);
        assert_eq!(binary_entropy(0.0), 0.0);
    }

    #[test]
    fn vulnerability_is_zero_without_threat_grows_to_ln2_and_obeys_the_sandwich() {
        let (theta, sigma, w) = ([1.0, 0.5], [1.0, 0.7], [0.8, 0.6]);
        let t0 = gaussian_mixture(&theta, &sigma, &w, 0.0, Norm::Linf);
        assert_eq!(t0.vulnerability, 0.0);
        assert_eq!(t0.risk, t0.adversarial_risk);
        let mut last = 0.0;
        for eps in [0.05, 0.1, 0.2, 0.4, 0.8, 1.6] {
            for norm in [Norm::Linf, Norm::L2] {
                let t = gaussian_mixture(&theta, &sigma, &w, eps, norm);
                let gap = t.adversarial_risk - t.risk;
                let lower = binary_entropy(0.5) - binary_entropy(0.5 - gap / 2.0);
                let upper = binary_entropy(0.5) - binary_entropy(0.5 - gap);
                assert!(
                    lower <= t.vulnerability + 1e-12 && t.vulnerability <= upper + 1e-12,
                    "ε {eps}"
                );
            }
            let t = gaussian_mixture(&theta, &sigma, &w, eps, Norm::Linf);
            assert!(t.vulnerability > last);
            last = t.vulnerability;
        }
        let far = gaussian_mixture(&theta, &sigma, &w, 50.0, Norm::L2);
        assert!((far.vulnerability - LN_2).abs() < 1e-9);
    }

    /// Monte-Carlo risks of sign(wᵀx) agree with the closed forms within sampling error.
    #[test]
    fn simulation_agrees_with_the_closed_forms() {
        let mixture = GaussianMixture {
            theta: vec![1.0, 0.5],
            sigma: vec![1.0, 0.7],
        };
        let w = [0.8f64, 0.6];
        let n = 200_000;
        let (x, class) = mixture.sample(n, 7);
        let y = class.to_kind(Kind::Double) * 2.0 - 1.0;
        let margin = x.to_kind(Kind::Double).matmul(&tch::Tensor::from_slice(&w)) * &y;
        for (eps, norm, dual) in [(0.3, Norm::Linf, 1.4), (0.3, Norm::L2, 1.0)] {
            let theory = gaussian_mixture(&mixture.theta, &mixture.sigma, &w, eps, norm);
            let risk = margin
                .lt(0.0)
                .to_kind(Kind::Double)
                .mean(Kind::Double)
                .double_value(&[]);
            let adv = margin
                .lt(eps * dual)
                .to_kind(Kind::Double)
                .mean(Kind::Double)
                .double_value(&[]);
            let tolerance = 4.0 * (0.25 / n as f64).sqrt();
            assert!(
                (risk - theory.risk).abs() < tolerance,
                "{risk} vs {}",
                theory.risk
            );
            assert!(
                (adv - theory.adversarial_risk).abs() < tolerance,
                "{adv} vs {}",
                theory.adversarial_risk
            );
        }
    }
}
