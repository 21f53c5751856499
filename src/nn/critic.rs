//! The critic T(x, z) of local Deep InfoMax, "encode and dot product" (SPEC §3). It shares no
//! weights with the encoder. The image side maps x to an H-vector at each of P local positions
//! (7×7 for 28×28 inputs, 8×8 for 32×32), the representation side maps z to one H-vector, and
//! the score of a pair at a position is their dot product.
use super::blocks::{ConvBlock, ResidualBlock1x1};
use tch::nn;
use tch::Tensor;

/// The paper's critic width H.
pub const PAPER_WIDTH: i64 = 2048;

#[derive(Debug)]
pub struct Critic {
    image_conv1: ConvBlock,
    image_conv2: ConvBlock,
    image_block: ResidualBlock1x1,
    representation_block: ResidualBlock1x1,
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
        }
    }

    /// Image side: `[N, C, H, W]` → `[N, width, P]`.
    pub fn image_features(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply_t(&self.image_conv1, train)
            .apply_t(&self.image_conv2, train)
            .apply_t(&self.image_block, train)
            .flatten(2, -1)
    }

    /// Representation side: `[N, d]` → `[N, width]` (z as a 1×1 feature map).
    pub fn representation_features(&self, z: &Tensor, train: bool) -> Tensor {
        let n = z.size()[0];
        z.view([n, -1, 1, 1])
            .apply_t(&self.representation_block, train)
            .view([n, -1])
    }

    /// Scores of every pair from the two sides' features: `u[i, j, p]` = ⟨rep_i, image_j at p⟩,
    /// `[N, N, P]`, positives on the diagonal i = j (SPEC §2).
    pub fn scores_from_features(representation: &Tensor, image: &Tensor) -> Tensor {
        let (n, width, p) = image.size3().expect("image features are [N, width, P]");
        let image = image.permute([1, 0, 2]).reshape([width, n * p]);
        representation.matmul(&image).view([-1, n, p])
    }

    /// `u[i, j, p]` = T(x_j at position p, z_i).
    pub fn scores(&self, x: &Tensor, z: &Tensor, train: bool) -> Tensor {
        Self::scores_from_features(
            &self.representation_features(z, train),
            &self.image_features(x, train),
        )
    }
}
