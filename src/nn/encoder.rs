//! The "basic encoder" g of Hjelm et al. (SPEC §3): three k4s2p1 blocks (64, 128, 256 channels),
//! Linear → 1024 → BN → ReLU, Linear → 64. The 64-d output, without activation, is the
//! representation z = g(x).
use super::blocks::ConvBlock;
use super::init;
use tch::nn::{self, ModuleT};
use tch::Tensor;

pub const REPRESENTATION_DIM: i64 = 64;
const HIDDEN: i64 = 1024;

#[derive(Debug)]
pub struct Encoder {
    pub(super) conv1: ConvBlock,
    pub(super) conv2: ConvBlock,
    pub(super) conv3: ConvBlock,
    pub(super) fc1: nn::Linear,
    pub(super) fc1_bn: nn::BatchNorm,
    pub(super) fc2: nn::Linear,
}

/// Spatial size after one k4s2p1 block.
pub fn conv_block_output(size: i64) -> i64 {
    (size + 2 * ConvBlock::PADDING - ConvBlock::KERNEL) / ConvBlock::STRIDE + 1
}

impl Encoder {
    /// `image_shape` is `[C, H, W]`: 1×28×28 (MNIST-like) or 3×32×32 (CIFAR-10).
    pub fn new(vs: &nn::Path, image_shape: [i64; 3]) -> Self {
        Self::with_output(vs, image_shape, REPRESENTATION_DIM)
    }

    /// The same network with an `output_dim`-d output (the global critic's image side).
    pub fn with_output(vs: &nn::Path, image_shape: [i64; 3], output_dim: i64) -> Self {
        let [c, h, w] = image_shape;
        let (h3, w3) = (0..3).fold((h, w), |(h, w), _| {
            (conv_block_output(h), conv_block_output(w))
        });
        Self {
            conv1: ConvBlock::new(&(vs / "conv1"), c, 64),
            conv2: ConvBlock::new(&(vs / "conv2"), 64, 128),
            conv3: ConvBlock::new(&(vs / "conv3"), 128, 256),
            fc1: init::linear(vs / "fc1", 256 * h3 * w3, HIDDEN),
            fc1_bn: init::batch_norm1d(vs / "fc1_bn", HIDDEN),
            fc2: init::linear(vs / "fc2", HIDDEN, output_dim),
        }
    }
}

impl ModuleT for Encoder {
    /// `[N, C, H, W]` in [0, 1] → `[N, 64]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply_t(&self.conv1, train)
            .apply_t(&self.conv2, train)
            .apply_t(&self.conv3, train)
            .flatten(1, -1)
            .apply(&self.fc1)
            .apply_t(&self.fc1_bn, train)
            .relu()
            .apply(&self.fc2)
    }
}
