//! Attacks on a classifier's loss: the objective of evaluation and of adversarial training.
use super::{apgd, fgsm, losses, pgd, AttackConfig};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// PGD on the cross-entropy.
    Pgd,
    /// FGSM on the cross-entropy.
    Fgsm,
    /// APGD on the cross-entropy.
    ApgdCe,
    /// APGD on the difference-of-logits-ratio loss.
    ApgdDlr,
}

/// An attack method with its settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierAttack {
    pub method: Method,
    pub config: AttackConfig,
}

impl ClassifierAttack {
    /// A short label, e.g. `PGD-10`, `PGD-10 ×5 restarts`, `APGD-DLR-100`.
    pub fn label(&self) -> String {
        let c = &self.config;
        let restarts = if c.restarts > 1 {
            format!(" ×{} restarts", c.restarts)
        } else {
            String::new()
        };
        let start = if c.random_start && self.method == Method::Pgd {
            " (random start)"
        } else {
            ""
        };
        match self.method {
            Method::Pgd => format!("PGD-{}{restarts}{start}", c.steps),
            Method::Fgsm => "FGSM".to_string(),
            Method::ApgdCe => format!("APGD-CE-{}{restarts}", c.steps),
            Method::ApgdDlr => format!("APGD-DLR-{}{restarts}", c.steps),
        }
    }

    /// Adversarial examples for `(x, y)` against `model`, which is run in evaluation mode.
    pub fn perturb(&self, model: &dyn ModuleT, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let ce = |x: &Tensor| losses::cross_entropy(&model.forward_t(x, false), y);
        let dlr = |x: &Tensor| losses::dlr(&model.forward_t(x, false), y);
        match self.method {
            Method::Pgd => pgd(&ce, x, &self.config),
            Method::Fgsm => fgsm(&ce, x, &self.config),
            Method::ApgdCe => apgd(&ce, x, &self.config),
            Method::ApgdDlr => apgd(&dlr, x, &self.config),
        }
    }
}

/// The strong evaluation: the given PGD as is, PGD with random starts and `restarts` runs,
/// APGD-CE and APGD-DLR with `apgd_steps` iterations each. A sample counts as robust only if
/// it survives all of them.
pub fn strong_suite(
    base: &AttackConfig,
    restarts: usize,
    apgd_steps: usize,
) -> Vec<ClassifierAttack> {
    let apgd = AttackConfig {
        steps: apgd_steps,
        random_start: false,
        restarts: 1,
        ..*base
    };
    vec![
        ClassifierAttack {
            method: Method::Pgd,
            config: *base,
        },
        ClassifierAttack {
            method: Method::Pgd,
            config: AttackConfig {
                random_start: true,
                restarts,
                ..*base
            },
        },
        ClassifierAttack {
            method: Method::ApgdCe,
            config: apgd,
        },
        ClassifierAttack {
            method: Method::ApgdDlr,
            config: apgd,
        },
    ]
}
