//! Natural and adversarial accuracy of a classifier under a list of attacks, with the
//! per-sample worst case over all of them.
use crate::attack::classifier::ClassifierAttack;
use crate::data::{batches::epoch_batches, LabelledImages};
use crate::error::Result;
use crate::report::progress;
use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

#[derive(Clone, Debug, Serialize)]
pub struct AttackAccuracy {
    pub attack: String,
    pub settings: ClassifierAttack,
    pub accuracy: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RobustnessReport {
    pub examples: usize,
    pub natural_accuracy: f64,
    pub attacks: Vec<AttackAccuracy>,
    /// Accuracy when each sample faces the attack that fools it, if any does.
    pub worst_case_accuracy: f64,
}

fn correct_mask(model: &dyn ModuleT, x: &Tensor, y: &Tensor) -> Tensor {
    tch::no_grad(|| model.forward_t(x, false).argmax(-1, false).eq_tensor(y))
}

fn count(mask: &Tensor) -> i64 {
    mask.sum(Kind::Int64).int64_value(&[])
}

/// Evaluates `model` on `indices` of `data` (all when `None`).
pub fn evaluate(
    model: &dyn ModuleT,
    data: &LabelledImages,
    indices: Option<&[i64]>,
    batch_size: usize,
    attacks: &[ClassifierAttack],
) -> Result<RobustnessReport> {
    let indices: Vec<i64> = indices.map_or_else(|| (0..data.len()).collect(), <[i64]>::to_vec);
    let batches = epoch_batches(&indices, batch_size, None, false);
    let bar = progress::bar(batches.len(), "evaluating".to_string());
    let mut natural = 0;
    let mut survived = vec![0i64; attacks.len()];
    let mut worst = 0;
    for index in &batches {
        let (x, y) = data.batch(index);
        let clean = correct_mask(model, &x, &y);
        natural += count(&clean);
        let mut robust = clean.shallow_clone();
        for (attack, survived) in attacks.iter().zip(&mut survived) {
            let x_adv = attack.perturb(model, &x, &y)?;
            let correct = correct_mask(model, &x_adv, &y);
            *survived += count(&correct);
            robust = robust.logical_and(&correct);
        }
        worst += count(&robust);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n = indices.len();
    let fraction = |k: i64| k as f64 / n.max(1) as f64;
    Ok(RobustnessReport {
        examples: n,
        natural_accuracy: fraction(natural),
        attacks: attacks
            .iter()
            .zip(survived)
            .map(|(a, k)| AttackAccuracy {
                attack: a.label(),
                settings: *a,
                accuracy: fraction(k),
            })
            .collect(),
        worst_case_accuracy: fraction(if attacks.is_empty() { natural } else { worst }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::classifier::strong_suite;
    use crate::attack::AttackConfig;
    use crate::data::synthetic;
    use crate::nn::ModelSpec;
    use tch::{nn, Device};

    #[test]
    fn worst_case_is_never_weaker_than_any_attack_and_eps_zero_is_natural() {
        tch::manual_seed(0);
        let data = synthetic::class_templates(96, [1, 28, 28], 10, 0.1, 4);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = ModelSpec::BaselineH {
            image_shape: [1, 28, 28],
            num_classes: 10,
        }
        .build(&vs.root());
        let base = AttackConfig::linf(0.05, 3, 0.02);
        let report = evaluate(
            model.classifier().unwrap(),
            &data,
            None,
            48,
            &strong_suite(&base, 2, 5),
        )
        .unwrap();
        assert_eq!(report.attacks.len(), 4);
        for attack in &report.attacks {
            assert!(
                report.worst_case_accuracy <= attack.accuracy,
                "{}",
                attack.attack
            );
            assert!(attack.accuracy <= report.natural_accuracy);
        }
        let zero = AttackConfig::linf(0.0, 3, 0.02);
        let report = evaluate(
            model.classifier().unwrap(),
            &data,
            None,
            48,
            &strong_suite(&zero, 2, 5),
        )
        .unwrap();
        assert_eq!(report.worst_case_accuracy, report.natural_accuracy);
    }
}
