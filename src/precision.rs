//! Reduced precision as an option: libtorch's autocast runs matrix products and convolutions in
//! bf16 (AVX-512 BF16 / AMX on recent CPUs, tensor cores on GPUs) while weights, optimizer state
//! and reductions stay f32. No loss scaling is needed: bf16 has f32's exponent range.
//!
//! tch exposes autocast for CUDA only; the CPU switch is libtorch's `at::autocast` API, whose
//! functions take only `int8_t`-sized enums and `bool` (passed like C integers), called here by
//! their exported C++ names.
use serde::{Deserialize, Serialize};
use tch::Device;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Matrix products and convolutions in bf16 (autocast); weights and updates in f32.
    Bf16,
}

impl Precision {
    /// Whether this is the default, which configurations leave out (keeping f32 runs' saved
    /// configurations, and so their resumption, as they were).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

/// `c10::DeviceType` values.
const CPU: i8 = 0;
const CUDA: i8 = 1;
/// `c10::ScalarType::BFloat16`.
const BFLOAT16: i8 = 15;

#[link(name = "torch_cpu")]
extern "C" {
    #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
    fn set_autocast_enabled(device_type: i8, enabled: bool);
    #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
    fn is_autocast_enabled(device_type: i8) -> bool;
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn set_autocast_dtype(device_type: i8, dtype: i8);
    #[link_name = "_ZN2at8autocast11clear_cacheEv"]
    fn clear_cache();
}

/// Runs `f` (one training step: forward, backward, update) at `precision` on `device`. The
/// autocast cache of bf16 weight copies is cleared afterwards, since the update changed them.
pub fn run<T>(precision: Precision, device: Device, f: impl FnOnce() -> T) -> T {
    if precision == Precision::F32 {
        return f();
    }
    let device_type = if device.is_cuda() { CUDA } else { CPU };
    // SAFETY: these libtorch functions only set or read thread-local autocast state.
    let was_enabled = unsafe {
        let was = is_autocast_enabled(device_type);
        set_autocast_dtype(device_type, BFLOAT16);
        set_autocast_enabled(device_type, true);
        was
    };
    let value = f();
    // SAFETY: as above; the cache holds only autocast's own weight copies.
    unsafe {
        set_autocast_enabled(device_type, was_enabled);
        if !was_enabled {
            clear_cache();
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn bf16_runs_products_in_bf16_and_restores_f32() {
        let a = Tensor::randn([8, 16], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([16, 4], (Kind::Float, Device::Cpu));
        let exact = a.matmul(&b);
        let reduced = run(Precision::Bf16, Device::Cpu, || a.matmul(&b));
        assert_eq!(reduced.kind(), Kind::BFloat16);
        let error = (reduced.to_kind(Kind::Float) - &exact).abs().max();
        let scale = exact.abs().max();
        let relative = error.double_value(&[]) / scale.double_value(&[]);
        assert!(
            relative > 0.0 && relative < 0.02,
            "relative error {relative}"
        );
        assert_eq!(a.matmul(&b).kind(), Kind::Float, "autocast is off again");
        let same = run(Precision::F32, Device::Cpu, || a.matmul(&b));
        assert_eq!(same.kind(), Kind::Float);
    }
}
