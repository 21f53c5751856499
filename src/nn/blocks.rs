//! Building blocks shared by the encoder and the critic (SPEC §3).
use super::init;
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// "k4s2p1": Conv2d(kernel 4, stride 2, padding 1, no bias) → BatchNorm2d → ReLU.
/// Halves the spatial size (rounding down).
#[derive(Debug)]
pub struct ConvBlock {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBlock {
    pub fn new(vs: &nn::Path, in_channels: i64, out_channels: i64) -> Self {
        Self {
            conv: init::conv2d(vs / "conv", in_channels, out_channels, 4, 2, 1, false),
            bn: init::batch_norm2d(vs / "bn", out_channels),
        }
    }
}

impl ModuleT for ConvBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train).relu()
    }
}

/// Local DIM's residual 1×1 block: LayerNorm_channels(nonlinear(x) + shortcut(x)) with
/// nonlinear = Conv1×1(no bias) → BN → ReLU → Conv1×1, and a shortcut Conv1×1 (no bias)
/// initialised near the identity so the critic starts from the raw features.
#[derive(Debug)]
pub struct ResidualBlock1x1 {
    nonlinear1: nn::Conv2D,
    bn: nn::BatchNorm,
    nonlinear2: nn::Conv2D,
    shortcut: nn::Conv2D,
    layer_norm: nn::LayerNorm,
}

impl ResidualBlock1x1 {
    pub fn new(vs: &nn::Path, in_channels: i64, width: i64) -> Self {
        let mut shortcut = init::conv2d(vs / "shortcut", in_channels, width, 1, 1, 0, false);
        if width >= in_channels {
            tch::no_grad(|| {
                let eye = Tensor::eye_m(width, in_channels, (tch::Kind::Bool, vs.device())).view([
                    width,
                    in_channels,
                    1,
                    1,
                ]);
                let init = shortcut.ws.uniform(-0.01, 0.01).masked_fill(&eye, 1.0);
                shortcut.ws.copy_(&init);
            });
        }
        Self {
            nonlinear1: init::conv2d(vs / "nonlinear1", in_channels, width, 1, 1, 0, false),
            bn: init::batch_norm2d(vs / "bn", width),
            nonlinear2: init::conv2d(vs / "nonlinear2", width, width, 1, 1, 0, true),
            shortcut,
            layer_norm: nn::layer_norm(vs / "layer_norm", vec![width], Default::default()),
        }
    }
}

impl ModuleT for ResidualBlock1x1 {
    /// `[N, C, H, W]` → `[N, width, H, W]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = x
            .apply(&self.nonlinear1)
            .apply_t(&self.bn, train)
            .relu()
            .apply(&self.nonlinear2)
            + x.apply(&self.shortcut);
        h.permute([0, 2, 3, 1])
            .apply(&self.layer_norm)
            .permute([0, 3, 1, 2])
    }
}
