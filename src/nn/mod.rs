//! The networks of SPEC §3, with parameter names that match PyTorch's `state_dict` for the
//! equivalent modules in `bench/peer/models.py`.
pub mod adam;
pub mod blocks;
pub mod classifier;
pub mod critic;
pub mod encoder;
pub mod folded;
pub mod global_critic;
pub mod heads;
pub mod init;
pub mod script;
pub mod vector_critic;
pub mod window;

pub use adam::{Adam, AdamConfig};
pub use classifier::EncoderClassifier;
pub use critic::Critic;
pub use encoder::Encoder;
pub use heads::{Head, HeadKind};
pub use window::{Classifier, Mapped, Whole, Window, WindowSearch};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// The variables of a store, sorted by name (the order of checkpoints and optimizer state).
pub fn named_variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<_> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// What a checkpoint holds, enough to rebuild the network before loading its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelSpec {
    /// The supervised Baseline-H: encoder + head (the paper's: MLP), trained end to end.
    BaselineH {
        image_shape: [i64; 3],
        #[serde(default = "mlp")]
        head: HeadKind,
        num_classes: i64,
    },
    /// A head trained on a frozen encoder.
    EncoderHead {
        image_shape: [i64; 3],
        head: HeadKind,
        num_classes: i64,
    },
    /// An encoder learned by (worst-case) MI maximisation, with its critic.
    EncoderCritic {
        image_shape: [i64; 3],
        critic_width: i64,
        /// Absent in checkpoints from before the global critic: the paper's local one.
        #[serde(default)]
        critic: critic::CriticKind,
        /// The cosine critic's temperature, when not [`critic::COSINE_TEMPERATURE`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        critic_temperature: Option<f64>,
    },
}

/// The limits [`ModelSpec::problem`] enforces: generous for images, small enough that a
/// corrupt description cannot ask for terabytes of weights.
const MAX_CHANNELS: i64 = 64;
const MIN_SIDE: i64 = 8;
const MAX_SIDE: i64 = 1024;
const MAX_CLASSES: i64 = 100_000;
const MAX_CRITIC_WIDTH: i64 = 65_536;

fn mlp() -> HeadKind {
    HeadKind::Mlp
}

impl ModelSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::BaselineH {
                head: HeadKind::Mlp,
                ..
            } => "baseline-h",
            ModelSpec::BaselineH {
                head: HeadKind::Linear,
                ..
            } => "baseline-h-linear",
            ModelSpec::EncoderHead {
                head: HeadKind::Linear,
                ..
            } => "encoder+linear-head",
            ModelSpec::EncoderHead {
                head: HeadKind::Mlp,
                ..
            } => "encoder+mlp-head",
            ModelSpec::EncoderCritic { .. } => "encoder+critic",
        }
    }

    /// A downstream head's encoder is trained elsewhere and stays fixed ("Downstream", SPEC §4).
    fn has_frozen_encoder(&self) -> bool {
        matches!(self, ModelSpec::EncoderHead { .. })
    }

    /// Builds the network the spec describes in `vs`, its encoder frozen where the spec says
    /// it is (a downstream head's).
    pub fn build(&self, vs: &nn::VarStore) -> Network {
        let network = self.build_under(&vs.root());
        if self.has_frozen_encoder() {
            freeze(vs, "encoder.");
        }
        network
    }

    fn build_under(&self, vs: &nn::Path) -> Network {
        match *self {
            ModelSpec::BaselineH {
                image_shape,
                head,
                num_classes,
            }
            | ModelSpec::EncoderHead {
                image_shape,
                head,
                num_classes,
            } => Network::Classifier(EncoderClassifier::new(
                vs,
                image_shape,
                head,
                num_classes,
                self.has_frozen_encoder(),
            )),
            ModelSpec::EncoderCritic {
                image_shape,
                critic_width,
                critic,
                critic_temperature,
            } => Network::EncoderCritic {
                encoder: Encoder::new(&(vs / "encoder"), image_shape),
                critic: critic::image_critic(
                    &(vs / "critic"),
                    critic,
                    image_shape,
                    encoder::REPRESENTATION_DIM,
                    critic_width,
                    critic_temperature,
                ),
            },
        }
    }

    /// Why this spec cannot be built, if it cannot: a checkpoint's description is read from a
    /// file, and libtorch aborts on a non-positive or absurd dimension instead of returning an
    /// error. The encoder halves the image three times, so each side needs at least 8 pixels.
    pub fn problem(&self) -> Option<String> {
        let [channels, height, width] = self.image_shape();
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Some(format!(
                "image_shape has {channels} channels (expected 1 to {MAX_CHANNELS})"
            ));
        }
        for (side, value) in [("height", height), ("width", width)] {
            if !(MIN_SIDE..=MAX_SIDE).contains(&value) {
                return Some(format!(
                    "image_shape has {side} {value} (expected {MIN_SIDE} to {MAX_SIDE} pixels)"
                ));
            }
        }
        match *self {
            ModelSpec::BaselineH { num_classes, .. }
            | ModelSpec::EncoderHead { num_classes, .. }
                if !(2..=MAX_CLASSES).contains(&num_classes) =>
            {
                Some(format!(
                    "num_classes is {num_classes} (expected 2 to {MAX_CLASSES})"
                ))
            }
            ModelSpec::EncoderCritic { critic_width, .. }
                if !(1..=MAX_CRITIC_WIDTH).contains(&critic_width) =>
            {
                Some(format!(
                    "critic_width is {critic_width} (expected 1 to {MAX_CRITIC_WIDTH})"
                ))
            }
            ModelSpec::EncoderCritic {
                critic_temperature: Some(t),
                ..
            } if !(t.is_finite() && t > 0.0) => Some(format!(
                "critic_temperature is {t} (expected a positive number)"
            )),
            _ => None,
        }
    }

    pub fn image_shape(&self) -> [i64; 3] {
        match *self {
            ModelSpec::BaselineH { image_shape, .. }
            | ModelSpec::EncoderHead { image_shape, .. }
            | ModelSpec::EncoderCritic { image_shape, .. } => image_shape,
        }
    }
}

/// Excludes the variables under `scope` (e.g. `"encoder."`; `""` for all) from training: a
/// downstream head trains on a frozen encoder, and a traced model holds its weights as constants.
pub fn freeze(vs: &nn::VarStore, scope: &str) {
    for (name, t) in vs.variables() {
        if name.starts_with(scope) {
            let _ = t.set_requires_grad(false);
        }
    }
}

/// A network rebuilt from a [`ModelSpec`]. Its named layers can serve as the representation
/// whose mutual information is measured.
#[derive(Debug)]
pub enum Network {
    Classifier(EncoderClassifier),
    EncoderCritic {
        encoder: Encoder,
        critic: Box<dyn critic::SeparableCritic>,
    },
}

impl Network {
    /// The classifier (pixels → logits), if this network has a head.
    pub fn classifier(&self) -> Result<&EncoderClassifier> {
        match self {
            Network::Classifier(model) => Ok(model),
            Network::EncoderCritic { .. } => Err(Error::invalid(
                "checkpoint",
                "holds an encoder without a classification head; train a head on it first",
            )),
        }
    }

    /// The classifier in evaluation mode with its batch norms folded (what attacks run on),
    /// if this network has a head; it holds the current weights.
    pub fn folded_classifier(&self) -> Result<folded::FoldedClassifier> {
        self.classifier().map(folded::FoldedClassifier::new)
    }

    /// The encoder of the network.
    pub fn encoder(&self) -> &Encoder {
        match self {
            Network::Classifier(model) => &model.encoder,
            Network::EncoderCritic { encoder, .. } => encoder,
        }
    }

    /// The layers [`Network::layer`] accepts, with their widths.
    pub fn layers(&self) -> Vec<(&'static str, i64)> {
        let mut layers = vec![("encoder", encoder::REPRESENTATION_DIM)];
        if let Network::Classifier(model) = self {
            layers.push(("logits", model.num_classes()));
        }
        layers
    }

    /// The output of layer `name` for pixels `x`, in evaluation mode.
    pub fn layer(&self, name: &str, x: &Tensor) -> Result<Tensor> {
        match (self, name) {
            (_, "encoder") => Ok(self.encoder().forward_t(x, false)),
            (Network::Classifier(model), "logits") => Ok(model.forward_t(x, false)),
            _ => {
                let known: Vec<_> = self.layers().iter().map(|(n, _)| *n).collect();
                Err(Error::invalid(
                    "layer",
                    format!(
                        "no layer '{name}' in this model (it has: {})",
                        known.join(", ")
                    ),
                ))
            }
        }
    }

    pub fn layer_width(&self, name: &str) -> Result<i64> {
        self.layers()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, w)| w)
            .ok_or_else(|| self.unknown_layer(name))
    }

    fn unknown_layer(&self, name: &str) -> Error {
        let known: Vec<_> = self.layers().iter().map(|(n, _)| *n).collect();
        Error::invalid(
            "layer",
            format!(
                "no layer '{name}' in this model (it has: {})",
                known.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::critic::SeparableCritic;
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn a_downstream_head_spec_builds_its_encoder_frozen() {
        let trainable = |spec: ModelSpec| {
            let vs = nn::VarStore::new(Device::Cpu);
            spec.build(&vs);
            named_variables(&vs)
                .into_iter()
                .filter(|(_, t)| t.requires_grad())
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
        };
        let head = trainable(ModelSpec::EncoderHead {
            image_shape: [1, 28, 28],
            head: HeadKind::Linear,
            num_classes: 10,
        });
        let baseline = trainable(ModelSpec::BaselineH {
            image_shape: [1, 28, 28],
            head: HeadKind::Linear,
            num_classes: 10,
        });
        assert!(baseline.iter().any(|n| n.starts_with("encoder.")));
        let baseline_head: Vec<_> = baseline
            .into_iter()
            .filter(|n| !n.starts_with("encoder."))
            .collect();
        assert!(!head.is_empty());
        assert_eq!(head, baseline_head);
    }

    fn count(vs: &nn::VarStore) -> i64 {
        vs.trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// Trainable parameters of a k4s2p1 block: the conv (no bias) and the BN affine pair.
    fn conv_block(cin: i64, cout: i64) -> i64 {
        cin * cout * 16 + 2 * cout
    }

    fn linear(fan_in: i64, fan_out: i64) -> i64 {
        fan_in * fan_out + fan_out
    }

    fn residual_block(cin: i64, h: i64) -> i64 {
        cin * h + 2 * h + linear(h, h) + cin * h + 2 * h
    }

    fn encoder_params(c: i64, flat: i64) -> i64 {
        conv_block(c, 64)
            + conv_block(64, 128)
            + conv_block(128, 256)
            + linear(flat, 1024)
            + 2 * 1024
            + linear(1024, 64)
    }

    #[test]
    fn encoder_critic_specs_without_a_critic_kind_hold_the_papers_local_critic() {
        let old: ModelSpec = serde_json::from_str(
            r#"{"kind":"encoder-critic","image_shape":[1,28,28],"critic_width":256}"#,
        )
        .unwrap();
        let ModelSpec::EncoderCritic { critic, .. } = old else {
            panic!("{old:?}")
        };
        assert_eq!(critic, critic::CriticKind::Local);
    }

    #[test]
    fn specs_with_impossible_dimensions_name_the_field() {
        let baseline = |image_shape, num_classes| ModelSpec::BaselineH {
            image_shape,
            head: HeadKind::Mlp,
            num_classes,
        };
        assert_eq!(baseline([1, 28, 28], 10).problem(), None);
        assert_eq!(baseline([3, 8, 8], 2).problem(), None);
        for (spec, field) in [
            (baseline([1, 28, 28], -3), "num_classes is -3"),
            (baseline([0, 28, 28], 10), "image_shape has 0 channels"),
            (baseline([1, -28, 28], 10), "image_shape has height -28"),
            (baseline([1, 28, 4], 10), "image_shape has width 4"),
            (
                ModelSpec::EncoderCritic {
                    image_shape: [1, 28, 28],
                    critic_width: -8,
                    critic: critic::CriticKind::Global,
                    critic_temperature: None,
                },
                "critic_width is -8",
            ),
        ] {
            let problem = spec.problem().expect("an impossible spec");
            assert!(problem.starts_with(field), "{problem}");
        }
    }

    #[test]
    fn encoder_shapes_and_parameter_counts() {
        for (shape, maps, flat) in [
            ([1, 28, 28], [[64, 14, 14], [128, 7, 7], [256, 3, 3]], 2304),
            ([3, 32, 32], [[64, 16, 16], [128, 8, 8], [256, 4, 4]], 4096),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let root = vs.root();
            let encoder = Encoder::new(&root, shape);
            let x = Tensor::rand(
                [5, shape[0], shape[1], shape[2]],
                (Kind::Float, Device::Cpu),
            );
            let h1 = blocks::ConvBlock::new(&(&root / "probe1"), shape[0], 64).forward_t(&x, false);
            assert_eq!(h1.size(), [5, maps[0][0], maps[0][1], maps[0][2]]);
            assert_eq!(encoder.forward_t(&x, true).size(), [5, 64]);
            let vs = nn::VarStore::new(Device::Cpu);
            let _ = Encoder::new(&vs.root(), shape);
            assert_eq!(count(&vs), encoder_params(shape[0], flat));
            assert_eq!(maps[2][0] * maps[2][1] * maps[2][2], flat);
            assert_eq!(encoder::conv_block_output(maps[0][1]), maps[1][1]);
            assert_eq!(encoder::conv_block_output(maps[1][1]), maps[2][1]);
        }
    }

    #[test]
    fn critic_scores_every_pair_at_every_location() {
        for (shape, positions) in [([1, 28, 28], 49), ([3, 32, 32], 64)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let critic = Critic::new(&vs.root(), shape[0], 64, 32);
            assert_eq!(
                count(&vs),
                conv_block(shape[0], 64)
                    + conv_block(64, 128)
                    + residual_block(128, 32)
                    + residual_block(64, 32)
            );
            let x = Tensor::rand(
                [6, shape[0], shape[1], shape[2]],
                (Kind::Float, Device::Cpu),
            );
            let z = Tensor::randn([6, 64], (Kind::Float, Device::Cpu));
            let image = critic.input_features(&x, false);
            let rep = critic.representation_features(&z, false);
            assert_eq!(image.size(), [6, positions, 32]);
            let u = critic.scores(&x, &z, false);
            assert_eq!(u.size(), [6, 6, positions]);
            // u[i, j, p] is the dot product of z_i's and x_j's features at p.
            let direct = (rep.get(4) * image.get(1).get(7)).sum(Kind::Float);
            assert!((u.double_value(&[4, 1, 7]) - direct.double_value(&[])).abs() < 1e-3);
        }
    }

    #[test]
    fn shortcut_starts_near_identity() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Critic::new(&vs.root(), 1, 64, 128);
        let w = vs.variables()["representation.shortcut.weight"].view([128, 64]);
        assert_eq!(w.diagonal(0, 0, 1).min().double_value(&[]), 1.0);
        assert!(w.narrow(0, 64, 64).abs().max().double_value(&[]) <= 0.01);
    }

    #[test]
    fn heads_and_baseline() {
        let vs = nn::VarStore::new(Device::Cpu);
        let z = Tensor::randn([4, 64], (Kind::Float, Device::Cpu));
        let linear_head = Head::new(&(vs.root() / "l"), HeadKind::Linear, 10);
        assert_eq!(linear_head.forward_t(&z, false).size(), [4, 10]);
        assert_eq!(count(&vs), linear(64, 10));
        let vs = nn::VarStore::new(Device::Cpu);
        let mlp = Head::new(&vs.root(), HeadKind::Mlp, 10);
        assert_eq!(mlp.forward_t(&z, true).size(), [4, 10]);
        assert_eq!(count(&vs), linear(64, 200) + 2 * 200 + linear(200, 10));
        let vs = nn::VarStore::new(Device::Cpu);
        let spec = ModelSpec::BaselineH {
            image_shape: [1, 28, 28],
            head: HeadKind::Mlp,
            num_classes: 10,
        };
        let model = spec.build(&vs);
        let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(
            model.classifier().unwrap().forward_t(&x, false).size(),
            [3, 10]
        );
        assert_eq!(
            count(&vs),
            encoder_params(1, 2304) + linear(64, 200) + 2 * 200 + linear(200, 10)
        );
        assert!(vs.variables().contains_key("encoder.conv1.bn.running_var"));
        assert!(vs.variables().contains_key("head.fc2.bias"));
    }
}
