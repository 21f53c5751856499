//! Layers with PyTorch's default initialisation, which the paper's code relies on.
//!
//! tch's defaults differ: Kaiming-uniform weights with the ReLU gain (a bound √6 times wider
//! than PyTorch's 1/√fan_in), zero conv biases, and batch-norm scales drawn from U(0, 1)
//! instead of 1. These constructors restore PyTorch's choices.
use tch::nn::{self, init::FanInOut, init::NonLinearity, init::NormalOrUniform, Init};

/// Kaiming-uniform with gain √(1/3): U(−1/√fan_in, 1/√fan_in), as `nn.Linear`/`nn.Conv2d`.
const WEIGHT: Init = Init::Kaiming {
    dist: NormalOrUniform::Uniform,
    fan: FanInOut::FanIn,
    non_linearity: NonLinearity::ExplicitGain(0.577_350_269_189_625_8),
};

fn bias(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

pub fn linear(vs: nn::Path, in_dim: i64, out_dim: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: WEIGHT,
        bs_init: Some(bias(in_dim)),
        bias: true,
    };
    nn::linear(vs, in_dim, out_dim, config)
}

/// A square 2-d convolution.
pub fn conv2d(
    vs: nn::Path,
    in_channels: i64,
    out_channels: i64,
    kernel: i64,
    stride: i64,
    padding: i64,
    with_bias: bool,
) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding,
        bias: with_bias,
        ws_init: WEIGHT,
        bs_init: bias(in_channels * kernel * kernel),
        ..Default::default()
    };
    nn::conv2d(vs, in_channels, out_channels, kernel, config)
}

/// Batch norm's ε (PyTorch's default), which folding a batch norm into its layer needs.
pub const BN_EPS: f64 = 1e-5;

fn batch_norm_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        eps: BN_EPS,
        ws_init: Init::Const(1.0),
        bs_init: Init::Const(0.0),
        ..Default::default()
    }
}

pub fn batch_norm1d(vs: nn::Path, features: i64) -> nn::BatchNorm {
    nn::batch_norm1d(vs, features, batch_norm_config())
}

pub fn batch_norm2d(vs: nn::Path, channels: i64) -> nn::BatchNorm {
    nn::batch_norm2d(vs, channels, batch_norm_config())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn matches_pytorch_defaults() {
        let vs = nn::VarStore::new(Device::Cpu);
        let l = linear(vs.root() / "l", 400, 300);
        let bound = 1.0 / 20.0;
        let w_max = l.ws.abs().max().double_value(&[]);
        assert!(w_max <= bound && w_max > 0.95 * bound, "{w_max}");
        let b_max = l.bs.as_ref().unwrap().abs().max().double_value(&[]);
        assert!(b_max <= bound && b_max > 0.8 * bound, "{b_max}");
        let bn = batch_norm2d(vs.root() / "bn", 8);
        assert_eq!(bn.ws.as_ref().unwrap().min().double_value(&[]), 1.0);
        let c = conv2d(vs.root() / "c", 4, 8, 4, 2, 1, true);
        let bound = 1.0 / 8.0;
        assert!(c.bs.as_ref().unwrap().abs().max().double_value(&[]) <= bound);
        assert!(c.ws.abs().max().double_value(&[]) > 0.9 * bound);
    }
}
