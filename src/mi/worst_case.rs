//! MI between inputs and a frozen representation, normal and worst case (SPEC §4, the paper's
//! Algorithms 1–2): a fresh critic is trained on training batches; for the worst case each batch
//! is first moved by PGD, with g and the critic fixed, to the x' that lowers Î(x'; g(x')), and the
//! critic then steps to raise Î on (x', g(x')). The estimate is the mean over K held-out test
//! batches, at PGD-found x' for the worst case.
use super::bounds::{estimate, pointwise, Bound};
use super::critic_training::{held_out, train_critic, CriticConfig, MiEstimate};
use crate::attack::{pgd, square, AttackConfig};
use crate::error::Result;
use crate::nn::critic::{image_critic, scores_from_features, CriticKind, SeparableCritic};
use crate::nn::vector_critic::VectorCritic;
use crate::nn::Critic;
use crate::seed::{self, Stream};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Where the attack's gradient flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AttackGradient {
    /// Through g(x') only; the critic's input side sees x' but is detached (the paper's code).
    Representation,
    /// Through the whole critic as well (the paper's Algorithm 1 as written).
    Full,
    /// Nowhere: a gradient-free random search (Square's, [`crate::attack::square`]) that
    /// lowers each sample's own term of the estimate ([`pointwise`]) with
    /// [`BLACK_BOX_QUERIES_PER_STEP`] queries per PGD step. It finds what a zero or
    /// misleading gradient hides from PGD.
    BlackBox,
}

/// Queries of the black-box search per PGD step of the attack settings: a query is one
/// forward pass, a PGD step a forward and a backward pass, so the search costs about three
/// times the PGD it stands beside.
pub const BLACK_BOX_QUERIES_PER_STEP: usize = 10;

/// The critic to train: the image critic of SPEC §3, or a small MLP critic for vectors.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CriticSpec {
    /// The paper's local critic (SPEC §3).
    Image { in_channels: i64, width: i64 },
    /// A critic whose image side sees the whole image ([`crate::nn::global_critic`]), scoring
    /// by dot product or by cosine over [`crate::nn::critic::COSINE_TEMPERATURE`].
    GlobalImage {
        image_shape: [i64; 3],
        width: i64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cosine: bool,
    },
    Vector {
        input_dim: i64,
        hidden: i64,
        embedding: i64,
    },
}

impl CriticSpec {
    /// An image critic of `kind` and width H for images of `image_shape`.
    pub fn image(kind: CriticKind, image_shape: [i64; 3], width: i64) -> Self {
        match kind {
            CriticKind::Local => CriticSpec::Image {
                in_channels: image_shape[0],
                width,
            },
            CriticKind::Global | CriticKind::GlobalCosine => CriticSpec::GlobalImage {
                image_shape,
                width,
                cosine: kind == CriticKind::GlobalCosine,
            },
        }
    }

    pub fn build(&self, vs: &tch::nn::Path, representation_dim: i64) -> Box<dyn SeparableCritic> {
        match *self {
            CriticSpec::Image { in_channels, width } => {
                Box::new(Critic::new(vs, in_channels, representation_dim, width))
            }
            CriticSpec::GlobalImage {
                image_shape,
                width,
                cosine,
            } => image_critic(
                vs,
                if cosine {
                    CriticKind::GlobalCosine
                } else {
                    CriticKind::Global
                },
                image_shape,
                representation_dim,
                width,
                None,
            ),
            CriticSpec::Vector {
                input_dim,
                hidden,
                embedding,
            } => Box::new(VectorCritic::new(
                vs,
                input_dim,
                representation_dim,
                hidden,
                embedding,
            )),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepresentationMiConfig {
    pub critic: CriticConfig,
    pub critic_spec: CriticSpec,
    /// PGD settings for the worst case; `None` for the normal estimate.
    pub attack: Option<AttackConfig>,
    pub attack_gradient: AttackGradient,
}

/// The inputs PGD finds to *lower* Î(x'; g(x')), with the critic in evaluation mode. The MI
/// estimate couples the batch, so its negation is given to every sample alike: PGD then keeps
/// the best iterate per batch. The black-box search instead lowers each sample's own term and
/// keeps each sample's best point.
pub fn worst_case_inputs(
    critic: &dyn SeparableCritic,
    representation: &dyn Fn(&Tensor) -> Tensor,
    x: &Tensor,
    bound: Bound,
    attack: &AttackConfig,
    gradient: AttackGradient,
) -> Result<Tensor> {
    let n = x.size()[0];
    if gradient == AttackGradient::BlackBox {
        let objective =
            |x_adv: &Tensor| -pointwise(&critic.scores(x_adv, &representation(x_adv), false));
        let search = AttackConfig {
            steps: attack.steps * BLACK_BOX_QUERIES_PER_STEP,
            ..*attack
        };
        return square(&objective, x, &search, None);
    }
    let objective = |x_adv: &Tensor| {
        let z = representation(x_adv);
        let u = match gradient {
            AttackGradient::Representation => {
                let input = tch::no_grad(|| critic.input_features(x_adv, false));
                scores_from_features(&critic.representation_features(&z, false), &input)
            }
            AttackGradient::Full | AttackGradient::BlackBox => critic.scores(x_adv, &z, false),
        };
        (-estimate(bound, &u)).expand([n], false)
    };
    pgd(&objective, x, attack)
}

/// What the MI is measured between: inputs picked by index, and a frozen representation of them.
pub struct MiProblem<'a> {
    /// `[N, …]` → `[N, representation_dim]`, differentiable in its input.
    pub representation: &'a dyn Fn(&Tensor) -> Tensor,
    pub representation_dim: i64,
    /// The inputs the critic trains on: a batch of indices into `train` → the inputs.
    pub train_inputs: &'a dyn Fn(&Tensor) -> Tensor,
    pub train: &'a [i64],
    /// The held-out inputs the estimate averages over (e.g. the test set).
    pub test_inputs: &'a dyn Fn(&Tensor) -> Tensor,
    pub test: &'a [i64],
}

/// Estimates I(X; g(X)), or its worst case, with a fresh critic.
pub fn estimate_mi(
    problem: &MiProblem,
    config: &RepresentationMiConfig,
    device: Device,
) -> Result<MiEstimate> {
    let MiProblem {
        representation,
        representation_dim,
        train_inputs,
        train,
        test_inputs,
        test,
    } = *problem;
    config.critic.validate()?;
    if let Some(attack) = &config.attack {
        attack.validate()?;
    }
    seed::seed_torch(config.critic.seed, Stream::Init, 1);
    let vs = VarStore::new(device);
    let critic = config.critic_spec.build(&vs.root(), representation_dim);
    let bound = config.critic.bound;
    let batch = |inputs: &dyn Fn(&Tensor) -> Tensor, index: &Tensor| -> Result<Tensor> {
        let x = inputs(index);
        match &config.attack {
            Some(attack) => worst_case_inputs(
                critic.as_ref(),
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
        let x = batch(train_inputs, index)?;
        let z = tch::no_grad(|| representation(&x));
        Ok(estimate(bound, &critic.scores(&x, &z, true)))
    };
    let (training_curve, chosen_epoch) =
        train_critic(&vs, train, &config.critic, &mut train_estimate)?;
    let mut test_estimate = |index: &Tensor| -> Result<f64> {
        let x = batch(test_inputs, index)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Encoder;
    use tch::nn::ModuleT;
    use tch::Kind;

    /// The optimised attack computes the critic's image side once per PGD step without a
    /// graph; the plain path builds the whole critic graph on a detached input. Same iterates.
    #[test]
    fn graph_free_image_side_matches_the_plain_path() {
        tch::manual_seed(3);
        let vs = VarStore::new(Device::Cpu);
        let encoder = Encoder::new(&(vs.root() / "encoder"), [1, 28, 28]);
        let critic = Critic::new(&(vs.root() / "critic"), 1, 64, 32);
        let representation = |x: &Tensor| encoder.forward_t(x, false);
        let x = Tensor::rand([16, 1, 28, 28], (Kind::Float, Device::Cpu));
        let attack = AttackConfig::linf(0.1, 4, 0.03);
        let optimised = worst_case_inputs(
            &critic,
            &representation,
            &x,
            Bound::Dv,
            &attack,
            AttackGradient::Representation,
        )
        .unwrap();
        let plain_objective = |x_adv: &Tensor| {
            let u = critic.scores(&x_adv.detach(), &representation(x_adv), false);
            (-estimate(Bound::Dv, &u)).expand([16], false)
        };
        let plain = pgd(&plain_objective, &x, &attack).unwrap();
        let moved = (&optimised - &x).abs().max().double_value(&[]);
        assert!(moved > 0.0, "the attack moved the inputs");
        let gap = (&optimised - &plain).abs().max().double_value(&[]);
        assert!(gap < 1e-6, "optimised and plain iterates differ by {gap}");
    }
}
