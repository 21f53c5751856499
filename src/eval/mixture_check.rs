//! How far the worst-case MI estimator can be trusted: on the binary Gaussian mixture with
//! g(x) = sign(wᵀx), whose representation vulnerability is known exactly (Theorem 3.2, SPEC §1),
//! compare the estimated RV with the exact one for each attack-gradient option.
use crate::attack::{AttackConfig, Norm};
use crate::data::synthetic::GaussianMixture;
use crate::error::Result;
use crate::mi::critic_training::CriticConfig;
use crate::mi::theory::gaussian_mixture;
use crate::mi::worst_case::{
    estimate_mi, AttackGradient, CriticSpec, MiProblem, RepresentationMiConfig,
};
use crate::mi::Bound;
use serde::Serialize;
use tch::{Device, Tensor};

#[derive(Clone, Debug, Serialize)]
pub struct MixtureRow {
    pub eps: f64,
    pub exact_vulnerability: f64,
    pub attack_gradient: AttackGradient,
    pub normal_mi: f64,
    pub worst_case_mi: f64,
    pub estimated_vulnerability: f64,
    pub ci95: f64,
}

/// Settings of the check (documented in the README's table).
#[derive(Clone, Debug, Serialize)]
pub struct MixtureCheck {
    pub theta: Vec<f64>,
    pub sigma: Vec<f64>,
    pub train_samples: usize,
    pub test_samples: usize,
    pub critic: CriticConfig,
    pub pgd_steps: usize,
}

impl Default for MixtureCheck {
    fn default() -> Self {
        Self {
            theta: vec![0.2; 10],
            sigma: vec![1.0; 10],
            train_samples: 20_000,
            test_samples: 5_120,
            critic: CriticConfig {
                bound: Bound::Dv,
                epochs: 5,
                batch_size: 256,
                lr: 1e-3,
                test_batches: 20,
                seed: 0,
            },
            pgd_steps: 10,
        }
    }
}

/// Runs the check for each ε and gradient option (ℓ∞ threat, w = θ/‖θ‖).
pub fn run(
    check: &MixtureCheck,
    eps_values: &[f64],
    gradients: &[AttackGradient],
) -> Result<Vec<MixtureRow>> {
    let mixture = GaussianMixture {
        theta: check.theta.clone(),
        sigma: check.sigma.clone(),
    };
    let (x, _) = mixture.sample(check.train_samples + check.test_samples, check.critic.seed);
    let w = Tensor::from_slice(&check.theta).to_kind(tch::Kind::Float);
    let representation = |x: &Tensor| x.matmul(&w).sign().unsqueeze(1);
    let inputs = |index: &Tensor| x.index_select(0, index);
    let train: Vec<i64> = (0..check.train_samples as i64).collect();
    let test: Vec<i64> =
        (check.train_samples as i64..(check.train_samples + check.test_samples) as i64).collect();
    let critic_spec = CriticSpec::Vector {
        input_dim: check.theta.len() as i64,
        hidden: 64,
        embedding: 16,
    };
    let config = |attack: Option<AttackConfig>, attack_gradient| RepresentationMiConfig {
        critic: check.critic.clone(),
        critic_spec,
        attack,
        attack_gradient,
    };
    let problem = MiProblem {
        representation: &representation,
        representation_dim: 1,
        train_inputs: &inputs,
        train: &train,
        test_inputs: &inputs,
        test: &test,
    };
    let normal = estimate_mi(
        &problem,
        &config(None, AttackGradient::Representation),
        Device::Cpu,
    )?;
    let mut rows = Vec::new();
    for &gradient in gradients {
        for &eps in eps_values {
            let attack = AttackConfig {
                bounds: None,
                ..AttackConfig::linf(eps, check.pgd_steps, (eps / 4.0).max(1e-6))
            };
            let worst = estimate_mi(&problem, &config(Some(attack), gradient), Device::Cpu)?;
            rows.push(MixtureRow {
                eps,
                exact_vulnerability: gaussian_mixture(
                    &check.theta,
                    &check.sigma,
                    &check.theta,
                    eps,
                    Norm::Linf,
                )
                .vulnerability,
                attack_gradient: gradient,
                normal_mi: normal.mean,
                worst_case_mi: worst.mean,
                estimated_vulnerability: normal.mean - worst.mean,
                ci95: normal.ci95.hypot(worst.ci95),
            });
        }
    }
    Ok(rows)
}
