//! Training-step benchmarks, timed in a process of their own so that peak memory is the step's.
//! `wcmi bench` runs these beside the PyTorch peer (`bench/peer/peer.py`), interleaved.
use crate::attack::classifier::{ClassifierAttack, Method};
use crate::attack::AttackConfig;
use crate::data::DatasetName;
use crate::error::Result;
use crate::nn::ModelSpec;
use crate::train::classifier::classifier_step;
use crate::train::{Adam, AdamConfig};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// The step kinds, on MNIST shapes (1×28×28) with batch 128.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Baseline-H, one Adam step on clean inputs.
    Supervised,
    /// Baseline-H adversarial training: PGD-10 (ε 0.3, α 0.1) then one Adam step.
    SupervisedAdv,
}

impl StepKind {
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Supervised => "supervised",
            StepKind::SupervisedAdv => "supervised-adv",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepTiming {
    pub kind: String,
    pub ms_per_step: f64,
    pub peak_rss_kb: u64,
}

/// The process's peak resident memory (VmHWM), in kB.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Times `steps` steps of `kind` after `warmup` untimed ones, on seeded random data.
pub fn time_steps(
    kind: StepKind,
    steps: usize,
    warmup: usize,
    batch_size: i64,
    device: Device,
) -> Result<StepTiming> {
    tch::manual_seed(0);
    let shape = DatasetName::Mnist.image_shape();
    let x = Tensor::rand(
        [batch_size, shape[0], shape[1], shape[2]],
        (Kind::Float, device),
    );
    let y = Tensor::randint(10, [batch_size], (Kind::Int64, device));
    let vs = VarStore::new(device);
    let model = ModelSpec::BaselineH {
        image_shape: shape,
        num_classes: 10,
    }
    .build(&vs.root());
    let mut adam = Adam::new(&vs, AdamConfig::with_lr(1e-4))?;
    let threat = DatasetName::Mnist.threat();
    let attack = match kind {
        StepKind::Supervised => None,
        StepKind::SupervisedAdv => Some(ClassifierAttack {
            method: Method::Pgd,
            config: AttackConfig::linf(threat.eps, threat.steps, threat.step_size),
        }),
    };
    let mut step =
        || classifier_step(model.classifier()?, &mut adam, &x, &y, attack.as_ref()).map(|_| ());
    for _ in 0..warmup {
        step()?;
    }
    let started = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    if let Device::Cuda(_) = device {
        tch::Cuda::synchronize(0);
    }
    Ok(StepTiming {
        kind: kind.name().to_string(),
        ms_per_step: 1000.0 * started.elapsed().as_secs_f64() / steps.max(1) as f64,
        peak_rss_kb: peak_rss_kb(),
    })
}
