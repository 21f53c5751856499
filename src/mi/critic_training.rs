//! Training a critic to maximise an MI bound, and the held-out estimate (SPEC §4).
//!
//! Generic over what a batch is: the caller's closures turn a batch of example indices into Î
//! (a scalar tensor), clean or adversarial, in training or evaluation mode.
use super::bounds::{ensure_negatives, Bound};
use crate::data::batches::epoch_batches;
use crate::error::{ensure_positive, ensure_positive_number, Error, Result};
use crate::nn::{named_variables, Adam, AdamConfig};
use crate::report::progress;
use crate::seed::{self, Stream};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

/// Settings of critic training and held-out estimation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CriticConfig {
    pub bound: Bound,
    pub epochs: usize,
    /// Pairs per batch; the estimate depends on it (InfoNCE ≤ ln N), reports state it.
    pub batch_size: usize,
    pub lr: f64,
    /// K: held-out batches the final estimate averages.
    pub test_batches: usize,
    pub seed: u64,
}

impl CriticConfig {
    pub fn validate(&self) -> Result<()> {
        ensure_positive("critic_epochs", self.epochs as i64)?;
        ensure_negatives(self.batch_size as i64)?;
        if self.test_batches < 2 {
            return Err(Error::invalid(
                "test_batches",
                format!(
                    "a confidence interval needs at least 2 test batches, got {}",
                    self.test_batches
                ),
            ));
        }
        ensure_positive_number("critic_lr", self.lr)?;
        Ok(())
    }
}

/// A held-out MI estimate with its 95 % confidence interval over test batches.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MiEstimate {
    pub bound: Bound,
    pub batch_size: usize,
    pub mean: f64,
    /// Half-width of the 95 % interval: 1.96 · sd / √K.
    pub ci95: f64,
    pub per_batch: Vec<f64>,
    /// Mean training Î per epoch.
    pub training_curve: Vec<f64>,
    /// The epoch (1-based) whose critic was kept: the best training value.
    pub chosen_epoch: usize,
}

/// How close to InfoNCE's cap ln N an estimate may come before it is flagged as saturated.
pub const SATURATION_MARGIN: f64 = 0.1;

impl MiEstimate {
    /// The most the bound can certify per batch: ln N for InfoNCE; DV and JSD have no cap.
    pub fn cap(&self) -> Option<f64> {
        (self.bound == Bound::Infonce).then(|| (self.batch_size as f64).ln())
    }

    /// Why the estimate cannot be read as an MI, when it sits within `SATURATION_MARGIN` of its
    /// cap: the critic's softmax over the batch is then nearly one-hot, so the estimate says
    /// only that the positive pair is found, its gradient vanishes, and a worst case searched
    /// through it barely moves (README, "The encoder objective's critic").
    pub fn saturation(&self) -> Option<String> {
        let cap = self.cap()?;
        (self.mean > cap - SATURATION_MARGIN).then(|| {
            format!(
                "Î = {:.3} nats is within {SATURATION_MARGIN} of InfoNCE's cap ln {} = {cap:.3}: \
                 the critic is saturated: the MI may be far above it, a worst case found \
                 through the critic understates the vulnerability, and the bound is near \
                 vacuous; a bounded critic (global-cosine) or a larger batch avoids it",
                self.mean, self.batch_size
            )
        })
    }
}

/// Mean and 95 % half-width of per-batch values.
pub fn mean_ci95(values: &[f64]) -> (f64, f64) {
    let k = values.len() as f64;
    let mean = values.iter().sum::<f64>() / k;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0);
    (mean, 1.96 * (var / k).sqrt())
}

fn snapshot(vs: &VarStore) -> Vec<(String, Tensor)> {
    named_variables(vs)
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect()
}

fn restore(vs: &VarStore, saved: &[(String, Tensor)]) {
    let vars = vs.variables();
    tch::no_grad(|| {
        for (name, value) in saved {
            vars[name].shallow_clone().copy_(value);
        }
    });
}

/// Trains the critic whose parameters are `vs` on batches of `train` indices, maximising the Î
/// that `train_estimate` returns (with its graph), then restores the epoch with the best mean
/// training Î. Returns the training curve and the chosen epoch.
pub fn train_critic(
    vs: &VarStore,
    train: &[i64],
    config: &CriticConfig,
    train_estimate: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
) -> Result<(Vec<f64>, usize)> {
    config.validate()?;
    let mut adam = Adam::new(vs, AdamConfig::with_lr(config.lr))?;
    let mut curve = Vec::with_capacity(config.epochs);
    let (mut best, mut best_epoch, mut best_state) = (f64::NEG_INFINITY, 0, snapshot(vs));
    for epoch in 0..config.epochs {
        seed::seed_torch(config.seed, Stream::Torch, epoch as u64);
        let batches = epoch_batches(
            train,
            config.batch_size,
            Some((config.seed, epoch as u64)),
            true,
        );
        if batches.is_empty() {
            return Err(Error::invalid(
                "batch_size",
                format!(
                    "{} exceeds the {} training examples",
                    config.batch_size,
                    train.len()
                ),
            ));
        }
        let bar = progress::bar(
            batches.len(),
            format!("critic epoch {}/{}", epoch + 1, config.epochs),
        );
        let mut total = 0.0;
        for (step, index) in batches.iter().enumerate() {
            let estimate = train_estimate(index)?;
            let value = estimate.double_value(&[]);
            if !value.is_finite() {
                return Err(Error::Diverged(format!(
                    "critic estimate is {value} at epoch {} step {step}; try a lower critic learning rate",
                    epoch + 1
                )));
            }
            adam.backward_step(&(-estimate));
            total += value;
            bar.inc(1);
            bar.set_message(format!("Î {:.3}", total / (step + 1) as f64));
        }
        bar.finish_and_clear();
        let mean = total / batches.len() as f64;
        curve.push(mean);
        if mean > best {
            (best, best_epoch, best_state) = (mean, epoch + 1, snapshot(vs));
        }
    }
    restore(vs, &best_state);
    Ok((curve, best_epoch))
}

/// Averages `test_estimate` over the first K shuffled batches of `test` indices.
pub fn held_out(
    test: &[i64],
    config: &CriticConfig,
    test_estimate: &mut dyn FnMut(&Tensor) -> Result<f64>,
) -> Result<(f64, f64, Vec<f64>)> {
    let batches = epoch_batches(test, config.batch_size, Some((config.seed, u64::MAX)), true);
    if batches.len() < config.test_batches {
        return Err(Error::invalid(
            "test_batches",
            format!(
                "{} batches of {} need {} test examples, only {} available",
                config.test_batches,
                config.batch_size,
                config.test_batches * config.batch_size,
                test.len()
            ),
        ));
    }
    let values = batches[..config.test_batches]
        .iter()
        .map(&mut *test_estimate)
        .collect::<Result<Vec<f64>>>()?;
    let (mean, ci) = mean_ci95(&values);
    Ok((mean, ci, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_interval_of_known_values() {
        let (mean, ci) = mean_ci95(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(mean, 2.5);
        // sd = √(5/3), se = sd / 2.
        assert!((ci - 1.96 * (5.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12);
    }

    fn estimate(bound: Bound, mean: f64) -> MiEstimate {
        MiEstimate {
            bound,
            batch_size: 128,
            mean,
            ci95: 0.01,
            per_batch: vec![mean; 2],
            training_curve: vec![mean],
            chosen_epoch: 1,
        }
    }

    #[test]
    fn flags_infonce_estimates_at_their_cap_only() {
        let cap = 128f64.ln();
        let flag = estimate(Bound::Infonce, cap - 0.05).saturation().unwrap();
        assert!(flag.contains("ln 128 = 4.852"), "{flag}");
        assert!(estimate(Bound::Infonce, cap - 0.2).saturation().is_none());
        assert!(estimate(Bound::Dv, cap).saturation().is_none());
        assert!(estimate(Bound::Jsd, cap).saturation().is_none());
    }

    #[test]
    fn rejects_batches_without_negatives() {
        let config = CriticConfig {
            bound: Bound::Dv,
            epochs: 1,
            batch_size: 1,
            lr: 1e-3,
            test_batches: 2,
            seed: 0,
        };
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains("batch_size") && e.contains("at least 2"), "{e}");
    }
}
