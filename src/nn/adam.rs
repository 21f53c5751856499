//! Adam (Kingma & Ba), written out so that its state can be checkpointed and a resumed run
//! continues exactly (libtorch's optimizer state is not reachable from tch). Same update as
//! `torch.optim.Adam` with no weight decay (SPEC §5: β = 0.9/0.999).
use super::named_variables;
use crate::error::{ensure_positive_number, Error, Result};
use std::collections::BTreeMap;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl AdamConfig {
    /// The paper's optimiser: Adam, lr 1e-4, β 0.9/0.999 (SPEC §5).
    pub fn with_lr(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

struct Slot {
    name: String,
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

pub struct Adam {
    config: AdamConfig,
    slots: Vec<Slot>,
    steps: i64,
}

impl Adam {
    /// Optimises every trainable variable of `vs`.
    pub fn new(vs: &VarStore, config: AdamConfig) -> Result<Self> {
        ensure_positive_number("lr", config.lr)?;
        let slots = named_variables(vs)
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, param)| Slot {
                name,
                exp_avg: param.zeros_like(),
                exp_avg_sq: param.zeros_like(),
                param,
            })
            .collect();
        Ok(Self {
            config,
            slots,
            steps: 0,
        })
    }

    pub fn zero_grad(&mut self) {
        for slot in &mut self.slots {
            slot.param.zero_grad();
        }
    }

    /// One update from the gradients currently stored on the parameters. In-place, with two
    /// temporaries per parameter, like `torch.optim.Adam`'s own loop.
    pub fn step(&mut self) {
        self.steps += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        let bias1 = 1.0 - beta1.powi(self.steps as i32);
        let bias2_sqrt = (1.0 - beta2.powi(self.steps as i32)).sqrt();
        let step_size = lr / bias1;
        tch::no_grad(|| {
            for slot in &mut self.slots {
                let grad = slot.param.grad();
                if !grad.defined() {
                    continue;
                }
                let _ = slot.exp_avg.lerp_(&grad, 1.0 - beta1);
                slot.exp_avg_sq *= beta2;
                let _ = slot.exp_avg_sq.addcmul_(&(&grad * (1.0 - beta2)), &grad);
                // param −= step_size · m / (√v / √(1 − β₂ᵗ) + ε), as one addcdiv with the
                // negated step folded into the denominator.
                let mut denom = slot.exp_avg_sq.sqrt();
                denom /= bias2_sqrt;
                denom += eps;
                denom *= -1.0 / step_size;
                let _ = slot.param.addcdiv_(&slot.exp_avg, &denom);
            }
        });
    }

    /// Back-propagates `loss`, then updates.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// The state as named tensors, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("steps".to_string(), Tensor::from(self.steps))];
        for slot in &self.slots {
            out.push((
                format!("exp_avg.{}", slot.name),
                slot.exp_avg.shallow_clone(),
            ));
            out.push((
                format!("exp_avg_sq.{}", slot.name),
                slot.exp_avg_sq.shallow_clone(),
            ));
        }
        out
    }

    /// Restores the state saved by [`Adam::state`] (names prefixed by `prefix`).
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>, prefix: &str) -> Result<()> {
        let get = |name: &str| {
            tensors
                .get(&format!("{prefix}{name}"))
                .ok_or_else(|| Error::invalid("resume", format!("optimizer state lacks {name}")))
        };
        self.steps = get("steps")?.to_kind(Kind::Int64).int64_value(&[]);
        tch::no_grad(|| -> Result<()> {
            for slot in &mut self.slots {
                for (kind, state) in [
                    ("exp_avg", &mut slot.exp_avg),
                    ("exp_avg_sq", &mut slot.exp_avg_sq),
                ] {
                    let saved = get(&format!("{kind}.{}", slot.name))?;
                    if saved.size() != state.size() {
                        return Err(Error::invalid(
                            "resume",
                            format!("optimizer state {kind}.{} has the wrong shape", slot.name),
                        ));
                    }
                    state.copy_(&saved.to_device(state.device()));
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    /// Two steps on f(w) = Σ w², checked against the update rule written out by hand.
    #[test]
    fn matches_the_adam_update_rule() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs
            .root()
            .var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]));
        let mut adam = Adam::new(&vs, AdamConfig::with_lr(0.1)).unwrap();
        let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8, 0.1);
        let mut expected = [1.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=2 {
            adam.backward_step(&(&w * &w).sum(Kind::Float));
            for i in 0..2 {
                let g = 2.0 * expected[i];
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let mhat = m[i] / (1.0 - b1.powi(t));
                let vhat = v[i] / (1.0 - b2.powi(t));
                expected[i] -= lr * mhat / (vhat.sqrt() + eps);
            }
        }
        for (i, e) in expected.iter().enumerate() {
            assert!((w.double_value(&[i as i64]) - e).abs() < 1e-6);
        }
        assert!(Adam::new(&vs, AdamConfig::with_lr(0.0)).is_err());
    }
}
