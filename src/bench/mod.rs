//! Training-step benchmarks, timed in a process of their own so that peak memory is the step's.
//! `wcmi bench` runs these beside the PyTorch peer (`bench/peer/peer.py`), interleaved.
use crate::attack::classifier::{ClassifierAttack, Method};
use crate::attack::AttackConfig;
use crate::data::DatasetName;
use crate::error::{Error, Result};
use crate::mi::worst_case::AttackGradient;
use crate::mi::Bound;
use crate::nn::critic::CriticKind;
use crate::nn::script::ScriptModel;
use crate::nn::Classifier;
use crate::nn::{Adam, AdamConfig};
use crate::nn::{HeadKind, ModelSpec, Network};
use crate::precision::{self, Precision};
use crate::train::classifier::classifier_step;
use crate::train::encoder::{encoder_step, EncoderConfig, EncoderObjective};
use crate::train::RunSettings;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

/// The step kinds, on MNIST shapes (1×28×28) with batch 128 and the MNIST threat of SPEC §5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Deep InfoMax: encoder + critic (width 2048) step on the DV bound.
    #[value(name = "dim-2048")]
    #[serde(rename = "dim-2048")]
    Dim2048,
    /// The same with critic width 512.
    #[value(name = "dim-512")]
    #[serde(rename = "dim-512")]
    Dim512,
    /// Worst-case MI maximisation, critic width 512: PGD-10 on Î, then the update.
    WorstCase,
    /// Adversarial MLP-head training on a frozen encoder: PGD-10 through it, then the update.
    HeadAdv,
    /// Baseline-H, one Adam step on clean inputs.
    Supervised,
    /// Baseline-H adversarial training: PGD-10, then one Adam step.
    SupervisedAdv,
    /// The paper's PGD-10 on Baseline-H in evaluation mode, as `evaluate` runs it (no update).
    Pgd,
    /// The same PGD-10 on a TorchScript trace of that Baseline-H, loaded as `--model` loads a
    /// PyTorch user's model: what measuring a model trained elsewhere costs.
    PgdScript,
}

impl StepKind {
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Dim2048 => "dim-2048",
            StepKind::Dim512 => "dim-512",
            StepKind::WorstCase => "worst-case",
            StepKind::HeadAdv => "head-adv",
            StepKind::Supervised => "supervised",
            StepKind::SupervisedAdv => "supervised-adv",
            StepKind::Pgd => "pgd",
            StepKind::PgdScript => "pgd-script",
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

fn mnist_attack() -> AttackConfig {
    let threat = DatasetName::Mnist.threat();
    AttackConfig::linf(threat.eps, threat.steps, threat.step_size)
}

/// Baseline-H's TorchScript trace (evaluation mode, weights as constants), saved to a file
/// of this process and loaded back as a user's model is.
fn traced(vs: &VarStore, network: &Network, x: &Tensor) -> Result<ScriptModel> {
    crate::nn::freeze(vs, "");
    let model = network.classifier()?;
    let module = tch::CModule::create_by_tracing(
        "BaselineH",
        "forward",
        &[x.shallow_clone()],
        &mut |inputs| vec![model.forward_t(&inputs[0], false)],
    )?;
    let path = std::env::temp_dir().join(format!("wcmi-bench-{}.pt", std::process::id()));
    module
        .save(&path)
        .map_err(|e| Error::model(&path, format!("cannot be written: {e}")))?;
    let loaded = ScriptModel::load(&path, x.device());
    let _ = std::fs::remove_file(&path);
    loaded
}

/// A step of `kind` on fixed data, ready to be called repeatedly.
fn step_fn(
    kind: StepKind,
    vs: &VarStore,
    x: Tensor,
    y: Tensor,
    precision: Precision,
) -> Result<Box<dyn FnMut() -> Result<()> + '_>> {
    let device = vs.device();
    let shape = DatasetName::Mnist.image_shape();
    let adam_for = |vs: &VarStore| Adam::new(vs, AdamConfig::with_lr(1e-4));
    let baseline_h = ModelSpec::BaselineH {
        image_shape: shape,
        head: HeadKind::Mlp,
        num_classes: 10,
    };
    Ok(match kind {
        StepKind::Dim2048 | StepKind::Dim512 | StepKind::WorstCase => {
            let width = if kind == StepKind::Dim2048 { 2048 } else { 512 };
            let objective = if kind == StepKind::WorstCase {
                EncoderObjective::WorstCase
            } else {
                EncoderObjective::Dim
            };
            let config = EncoderConfig {
                objective,
                bound: Bound::Dv,
                critic_width: width,
                critic: CriticKind::Local,
                critic_temperature: None,
                run: RunSettings {
                    epochs: 1,
                    batch_size: x.size()[0] as usize,
                    precision,
                    ..RunSettings::default()
                },
                attack: mnist_attack(),
                attack_gradient: AttackGradient::Representation,
                val_batches: 0,
            };
            let Network::EncoderCritic { encoder, critic } = config.model_spec(shape).build(vs)
            else {
                unreachable!("an encoder-critic spec builds an encoder and a critic")
            };
            let mut adam = adam_for(vs)?;
            Box::new(move || {
                precision::run(precision, device, || {
                    encoder_step(&encoder, critic.as_ref(), &mut adam, &x, &config).map(|_| ())
                })
            })
        }
        StepKind::Pgd | StepKind::PgdScript => {
            let network = baseline_h.build(vs);
            let attack = ClassifierAttack {
                method: Method::Pgd,
                config: mnist_attack(),
            };
            let script = (kind == StepKind::PgdScript)
                .then(|| traced(vs, &network, &x))
                .transpose()?;
            Box::new(move || {
                // An evaluation folds its model's batch norms once per model, here once a step.
                let folded;
                let model: &dyn Classifier = match &script {
                    Some(script) => script,
                    None => {
                        folded = network.folded_classifier()?;
                        &folded
                    }
                };
                attack.perturb(model, &x, &y).map(|_| ())
            })
        }
        StepKind::HeadAdv | StepKind::Supervised | StepKind::SupervisedAdv => {
            let spec = match kind {
                StepKind::HeadAdv => ModelSpec::EncoderHead {
                    image_shape: shape,
                    head: HeadKind::Mlp,
                    num_classes: 10,
                },
                _ => baseline_h,
            };
            let network = spec.build(vs);
            let mut adam = adam_for(vs)?;
            let attack = (kind != StepKind::Supervised).then(|| ClassifierAttack {
                method: Method::Pgd,
                config: mnist_attack(),
            });
            Box::new(move || {
                precision::run(precision, device, || {
                    classifier_step(network.classifier()?, &mut adam, &x, &y, attack.as_ref())
                        .map(|_| ())
                })
            })
        }
    })
}

/// Times `steps` steps of `kind` after `warmup` untimed ones, on seeded random data.
pub fn time_steps(
    kind: StepKind,
    steps: usize,
    warmup: usize,
    batch_size: i64,
    precision: Precision,
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
    let mut step = step_fn(kind, &vs, x, y, precision)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traced_baseline_h_computes_what_the_network_does_under_pgd() {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let spec = ModelSpec::BaselineH {
            image_shape: DatasetName::Mnist.image_shape(),
            head: HeadKind::Mlp,
            num_classes: 10,
        };
        let network = spec.build(&vs);
        let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 3, 5, 9]);
        let script = traced(&vs, &network, &x).unwrap();
        let native = network.classifier().unwrap();
        let other = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
        let gap = (native.forward_t(&other, false) - script.forward_t(&other, false))
            .abs()
            .max()
            .double_value(&[]);
        assert!(gap < 1e-5, "logits differ by {gap}");
        let attack = ClassifierAttack {
            method: Method::Pgd,
            config: mnist_attack(),
        };
        let (a, b) = (
            attack.perturb(native, &x, &y).unwrap(),
            attack.perturb(&script, &x, &y).unwrap(),
        );
        let moved = (&a - &x).abs().mean(None).double_value(&[]);
        let differ = (&a - &b).abs().mean(None).double_value(&[]);
        assert!(
            moved > 0.1 && differ < 1e-3,
            "moved {moved}, differ {differ}"
        );
    }
}
