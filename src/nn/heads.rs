//! Downstream heads on the 64-d representation (SPEC §3).
use super::encoder::REPRESENTATION_DIM;
use super::init;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

const MLP_HIDDEN: i64 = 200;
const MLP_DROPOUT: f64 = 0.1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    Linear,
    Mlp,
}

impl HeadKind {
    /// Its name in flags, JSON, folder names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Mlp => "mlp",
        }
    }
}

/// Linear(64 → classes), or Linear(64 → 200) → Dropout(0.1) → BN1d → ReLU → Linear(200 → classes).
#[derive(Debug)]
pub enum Head {
    Linear {
        fc: nn::Linear,
    },
    Mlp {
        fc1: nn::Linear,
        bn: nn::BatchNorm,
        fc2: nn::Linear,
    },
}

impl Head {
    pub fn new(vs: &nn::Path, kind: HeadKind, num_classes: i64) -> Self {
        let d = REPRESENTATION_DIM;
        match kind {
            HeadKind::Linear => Head::Linear {
                fc: init::linear(vs / "fc", d, num_classes),
            },
            HeadKind::Mlp => Head::Mlp {
                fc1: init::linear(vs / "fc1", d, MLP_HIDDEN),
                bn: init::batch_norm1d(vs / "bn", MLP_HIDDEN),
                fc2: init::linear(vs / "fc2", MLP_HIDDEN, num_classes),
            },
        }
    }
}

impl ModuleT for Head {
    /// `[N, 64]` → logits `[N, classes]`.
    fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        match self {
            Head::Linear { fc } => z.apply(fc),
            Head::Mlp { fc1, bn, fc2 } => z
                .apply(fc1)
                .dropout(MLP_DROPOUT, train)
                .apply_t(bn, train)
                .relu()
                .apply(fc2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn a_head_kind_has_one_name_in_flags_json_and_folders() {
        for kind in HeadKind::value_variants() {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
            assert_eq!(kind.to_possible_value().unwrap().get_name(), kind.name());
        }
    }
}
