//! The critic T(x, z) of local Deep InfoMax, "encode and dot product" (SPEC §3). It shares no
//! weights with the encoder. The image side maps x to an H-vector at each of P local positions
//! (7×7 for 28×28 inputs, 8×8 for 32×32), the representation side maps z to one H-vector, and
//! the score of a pair at a position is their dot product.
use super::blocks::{locations_as_rows, ConvBlock, ResidualBlock1x1};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

/// The paper's critic width H.
pub const PAPER_WIDTH: i64 = 2048;

/// The default temperature τ of [`CriticKind::GlobalCosine`]: scores lie in [−1/τ, 1/τ]
/// (SimCLR's range of choices; 0.2 made the attack effective on MNIST where plain dot products
/// saturated).
pub const COSINE_TEMPERATURE: f64 = 0.2;

/// Which image critic scores (image, representation) pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CriticKind {
    /// The paper's local critic: scores per patch, averaged (SPEC §3).
    #[default]
    Local,
    /// Scores on the whole image ([`super::global_critic`]): tighter estimates for class-like
    /// representations.
    Global,
    /// The global critic scoring by cosine similarity over a temperature: bounded scores keep
    /// InfoNCE from saturating, so the worst-case objective's attack keeps a gradient.
    GlobalCosine,
}

/// A critic that scores every (input, representation) pair of a batch by a dot product of
/// features computed separately on each side (SPEC §2's `u[i, j, p]`).
pub trait SeparableCritic: std::fmt::Debug {
    /// Input side: `[N, …]` → `[N, P, width]`.
    fn input_features(&self, x: &Tensor, train: bool) -> Tensor;
    /// Representation side: `[N, d]` → `[N, width]`.
    fn representation_features(&self, z: &Tensor, train: bool) -> Tensor;

    /// `u[i, j, p]` = T(x_j at position p, z_i).
    fn scores(&self, x: &Tensor, z: &Tensor, train: bool) -> Tensor {
        scores_from_features(
            &self.representation_features(z, train),
            &self.input_features(x, train),
        )
    }
}

/// A fresh image critic of `kind` and width H, for images of `image_shape` and
/// `representation_dim`-d representations; `temperature` is the cosine critic's (default
/// [`COSINE_TEMPERATURE`]) and means nothing to the others.
pub fn image_critic(
    vs: &nn::Path,
    kind: CriticKind,
    image_shape: [i64; 3],
    representation_dim: i64,
    width: i64,
    temperature: Option<f64>,
) -> Box<dyn SeparableCritic> {
    match kind {
        CriticKind::Local => Box::new(Critic::new(vs, image_shape[0], representation_dim, width)),
        CriticKind::Global | CriticKind::GlobalCosine => {
            Box::new(super::global_critic::GlobalCritic::new(
                vs,
                image_shape,
                representation_dim,
                width,
                (kind == CriticKind::GlobalCosine)
                    .then(|| temperature.unwrap_or(COSINE_TEMPERATURE)),
            ))
        }
    }
}

/// Scores of every pair from the two sides' features: `u[i, j, p]` = ⟨rep_i, input_j at p⟩,
/// `[N, N, P]`, positives on the diagonal i = j (SPEC §2). One matrix product with the input
/// rows transposed (a view, not a copy).
pub fn scores_from_features(representation: &Tensor, input: &Tensor) -> Tensor {
    let (n, p, width) = input.size3().expect("input features are [N, P, width]");
    representation
        .matmul(&input.reshape([n * p, width]).tr())
        .view([-1, n, p])
}

/// The representation side of both image critics: `[N, d]` → `[N, width]`, the residual 1×1
/// block applied to z as one location per sample.
pub fn representation_side(block: &ResidualBlock1x1, z: &Tensor, train: bool) -> Tensor {
    z.apply_t(block, train)
}

#[derive(Debug)]
pub struct Critic {
    image_conv1: ConvBlock,
    image_conv2: ConvBlock,
    image_block: ResidualBlock1x1,
    representation_block: ResidualBlock1x1,
    width: i64,
}

impl Critic {
    /// A critic for `in_channels`-channel images and `representation_dim`-d representations
    /// (64 for the encoder; the number of classes for a classifier's logits).
    pub fn new(vs: &nn::Path, in_channels: i64, representation_dim: i64, width: i64) -> Self {
        let image = vs / "image";
        Self {
            image_conv1: ConvBlock::new(&(&image / "conv1"), in_channels, 64),
            image_conv2: ConvBlock::new(&(&image / "conv2"), 64, 128),
            image_block: ResidualBlock1x1::new(&(&image / "block"), 128, width),
            representation_block: ResidualBlock1x1::new(
                &(vs / "representation"),
                representation_dim,
                width,
            ),
            width,
        }
    }
}

impl SeparableCritic for Critic {
    /// Image side: `[N, C, H, W]` → `[N, P, width]`.
    fn input_features(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        let maps = x
            .apply_t(&self.image_conv1, train)
            .apply_t(&self.image_conv2, train);
        locations_as_rows(&maps)
            .apply_t(&self.image_block, train)
            .view([n, -1, self.width])
    }

    fn representation_features(&self, z: &Tensor, train: bool) -> Tensor {
        representation_side(&self.representation_block, z, train)
    }
}
