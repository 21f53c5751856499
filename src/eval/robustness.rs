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
            .map(|(a, k)| AttackAccuracy { attack: a.label(), settings: *a, accuracy: fraction(k) })
            .collect(),
        worst_case_accuracy: fraction(if attacks.is_empty() { natural } else { worst }),
    })
}
