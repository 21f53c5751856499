//! MI between images and a frozen representation, normal and worst case (SPEC §4, the paper's
//! Algorithms 1–2): a fresh critic is trained on training batches; for the worst case each batch
//! is first moved by PGD, with g and the critic fixed, to the x' that lowers Î(x'; g(x')), and the
//! critic then steps to raise Î on (x', g(x')). The estimate is the mean over K held-out test
//! batches, at PGD-found x' for the worst case.
use super::bounds::{estimate, Bound};
use super::critic_training::{held_out, train_critic, CriticConfig, MiEstimate};
use crate::attack::{pgd, AttackConfig};
use crate::data::LabelledImages;
use crate::error::Result;
use crate::nn::Critic;
use crate::seed::{self, Stream};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Where the attack's gradient flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AttackGradient {
    /// Through g(x') only; the critic's image side sees x' but is detached (the paper's code).
    Representation,
    /// Through the whole critic as well (the paper's Algorithm 1 as written).
    Full,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepresentationMiConfig {
    pub critic: CriticConfig,
    /// The critic width H (the paper: 2048).
    pub critic_width: i64,
    /// PGD settings for the worst case; `None` for the normal estimate.
    pub attack: Option<AttackConfig>,
    pub attack_gradient: AttackGradient,
}

/// Î at the inputs PGD finds to *lower* it, with the critic in evaluation mode. The MI estimate
/// couples the batch, so its negation is given to every sample alike: PGD then keeps the best
/// iterate per batch.
pub fn worst_case_inputs(
    critic: &Critic,
    representation: &dyn Fn(&Tensor) -> Tensor,
    x: &Tensor,
    bound: Bound,
    attack: &AttackConfig,
    gradient: AttackGradient,
) -> Result<Tensor> {
    let n = x.size()[0];
    let objective = |x_adv: &Tensor| {
        let z = representation(x_adv);
        let u = match gradient {
            AttackGradient::Representation => {
                let image = tch::no_grad(|| critic.image_features(x_adv, false));
                Critic::scores_from_features(&critic.representation_features(&z, false), &image)
            }
            AttackGradient::Full => critic.scores(x_adv, &z, false),
        };
        (-estimate(bound, &u)).expand([n], false)
    };
    pgd(&objective, x, attack)
}

/// Estimates I(X; g(X)) — or its worst case — for `representation` (`[N, C, H, W]` →
/// `[N, representation_dim]`) on `train` and `test` indices of `data`.
pub fn estimate_mi(
    representation: &dyn Fn(&Tensor) -> Tensor,
    representation_dim: i64,
    data: &LabelledImages,
    train: &[i64],
    test: &[i64],
    config: &RepresentationMiConfig,
    device: Device,
) -> Result<MiEstimate> {
    config.critic.validate()?;
    if let Some(attack) = &config.attack {
        attack.validate()?;
    }
    seed::seed_torch(config.critic.seed, Stream::Init, 1);
    let vs = VarStore::new(device);
    let critic = Critic::new(
        &vs.root(),
        data.image_shape()[0],
        representation_dim,
        config.critic_width,
    );
    let bound = config.critic.bound;
    let inputs = |index: &Tensor| -> Result<Tensor> {
        let (x, _) = data.batch(index);
        match &config.attack {
            Some(attack) => worst_case_inputs(
                &critic,
                representation,
                &x,
                bound,
                attack,
                config.attack_gradient,
            ),
            None => Ok(x),
        }
    };
    let mut train_estimate = |index: &Tensor| -> Result<Tensor> {
        let x = inputs(index)?;
        let z = tch::no_grad(|| representation(&x));
        Ok(estimate(bound, &critic.scores(&x, &z, true)))
    };
    let (training_curve, chosen_epoch) =
        train_critic(&vs, train, &config.critic, &mut train_estimate)?;
    let mut test_estimate = |index: &Tensor| -> Result<f64> {
        let x = inputs(index)?;
        Ok(
            tch::no_grad(|| estimate(bound, &critic.scores(&x, &representation(&x), false)))
                .double_value(&[]),
        )
    };
    let (mean, ci95, per_batch) = held_out(test, &config.critic, &mut test_estimate)?;
    Ok(MiEstimate {
        bound,
        batch_size: config.critic.batch_size,
        mean,
        ci95,
        per_batch,
        training_curve,
        chosen_epoch,
    })
}
