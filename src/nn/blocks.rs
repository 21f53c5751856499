//! Building blocks shared by the encoder and the critic (SPEC §3).
use super::init;
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// "k4s2p1": Conv2d(kernel 4, stride 2, padding 1, no bias) → BatchNorm2d → ReLU.
/// Halves the spatial size (rounding down).
#[derive(Debug)]
pub struct ConvBlock {
    pub(super) conv: nn::Conv2D,
    pub(super) bn: nn::BatchNorm,
}

impl ConvBlock {
    pub const KERNEL: i64 = 4;
    pub const STRIDE: i64 = 2;
    pub const PADDING: i64 = 1;

    pub fn new(vs: &nn::Path, in_channels: i64, out_channels: i64) -> Self {
        let (k, s, p) = (Self::KERNEL, Self::STRIDE, Self::PADDING);
        Self {
            conv: init::conv2d(vs / "conv", in_channels, out_channels, k, s, p, false),
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
///
/// A 1×1 convolution acts on each location's channel vector alone, so the block runs on rows
/// `[M, C]`, one per location: the convolutions become matrix products (no im2col or layout
/// reorders), batch norm over rows has the statistics of BatchNorm2d over (N, H, W), and the
/// channel LayerNorm is over the last dimension, needing no permutes. The weights keep their
/// convolution shapes `[out, in, 1, 1]`, so checkpoints are those of the PyTorch module.
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
            bn: init::batch_norm1d(vs / "bn", width),
            nonlinear2: init::conv2d(vs / "nonlinear2", width, width, 1, 1, 0, true),
            shortcut,
            layer_norm: nn::layer_norm(vs / "layer_norm", vec![width], Default::default()),
        }
    }
}

/// A 1×1 convolution applied to rows `[M, in]` → `[M, out]`.
fn conv1x1_rows(conv: &nn::Conv2D, rows: &Tensor) -> Tensor {
    rows.linear(&conv.ws.flatten(1, -1), conv.bs.as_ref())
}

impl ModuleT for ResidualBlock1x1 {
    /// Rows `[M, C]` → `[M, width]`.
    fn forward_t(&self, rows: &Tensor, train: bool) -> Tensor {
        let nonlinear = conv1x1_rows(&self.nonlinear1, rows)
            .apply_t(&self.bn, train)
            .relu();
        (conv1x1_rows(&self.nonlinear2, &nonlinear) + conv1x1_rows(&self.shortcut, rows))
            .apply(&self.layer_norm)
    }
}

/// Feature maps `[N, C, H, W]` → rows `[N·H·W, C]`, one per location.
pub fn locations_as_rows(x: &Tensor) -> Tensor {
    let channels = x.size()[1];
    x.permute([0, 2, 3, 1]).reshape([-1, channels])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// The row formulation against the block written with convolutions on `[N, C, H, W]` and
    /// a permuted LayerNorm, as the PyTorch module computes it.
    #[test]
    fn rows_match_the_convolutional_block() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let block = ResidualBlock1x1::new(&vs.root(), 24, 40);
        let x = Tensor::randn([3, 24, 5, 5], (Kind::Float, Device::Cpu));
        for train in [true, false] {
            let bn = |h: &Tensor| {
                Tensor::batch_norm(
                    h,
                    block.bn.ws.as_ref(),
                    block.bn.bs.as_ref(),
                    Some(&block.bn.running_mean.copy()),
                    Some(&block.bn.running_var.copy()),
                    train,
                    0.1,
                    1e-5,
                    false,
                )
            };
            let h = bn(&x.apply(&block.nonlinear1))
                .relu()
                .apply(&block.nonlinear2)
                + x.apply(&block.shortcut);
            let reference = h
                .permute([0, 2, 3, 1])
                .apply(&block.layer_norm)
                .reshape([-1, 40]);
            let rows = tch::no_grad(|| block.forward_t(&locations_as_rows(&x), train));
            let gap = (rows - reference).abs().max().double_value(&[]);
            assert!(gap < 1e-4, "train = {train}: {gap}");
        }
    }
}
