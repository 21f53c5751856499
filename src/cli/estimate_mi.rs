//! `wcmi estimate-mi` and `wcmi vulnerability`: MI between images and a model's layer (a wcmi
//! checkpoint's or a TorchScript model's), normal and worst case, the representation
//! vulnerability and the Theorem 3.4 bound.
use super::common::{positive, GlobalArgs, ModelArgs, ThreatArgs};
use crate::atomic::write_json_atomic;
use crate::attack::AttackConfig;
use crate::data::{split, DataSource};
use crate::eval::vulnerability::{self, with_layer_problem};
use crate::mi::bounds::ensure_negatives;
use crate::mi::worst_case::{estimate_mi, AttackGradient, CriticSpec, RepresentationMiConfig};
use crate::mi::{Bound, CriticConfig};
use crate::model::Model;
use crate::nn::critic::CriticKind;
use crate::report::table;
use anyhow::Context;
use std::path::{Path, PathBuf};
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct MiArgs {
    /// The model whose layer is measured.
    #[command(flatten)]
    pub source: ModelArgs,
    /// Dataset: a name or an image folder (`DIR/train/<class>/*.png|jpg`, `DIR/test/…`; the
    /// worst case then needs --eps, --steps and --step-size) (default: the checkpoint's own).
    #[arg(long)]
    pub dataset: Option<DataSource>,
    /// The layer used as representation, flattened: a checkpoint's `encoder` (64-d, the
    /// default) or `logits`; a TorchScript model's method (default `encode`) or `logits`
    /// (its forward).
    #[arg(long)]
    pub layer: Option<String>,
    #[command(flatten)]
    pub critic: CriticArgs,
    /// Where the attack's gradient flows.
    #[arg(long, value_enum, default_value = "representation")]
    pub attack_gradient: AttackGradient,
    #[command(flatten)]
    pub threat: ThreatArgs,
    /// Output JSON (default: beside the checkpoint).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The critic of an MI estimate and how it is trained and evaluated.
#[derive(clap::Args, Debug)]
pub struct CriticArgs {
    /// The MI bound the critic maximises and reports (the paper: dv).
    #[arg(long, value_enum, default_value = "infonce")]
    pub bound: Bound,
    /// `global` (sees the whole image; much tighter for class-like layers), `global-cosine`
    /// (cosine scores over a temperature: bounded, so InfoNCE does not saturate at ln N on
    /// label-free encoders) or `local` (the paper's patch critic).
    #[arg(long, value_enum, default_value = "global")]
    pub critic: CriticKind,
    /// Critic width H (the paper: 2048; smaller is faster).
    #[arg(long, default_value_t = 256, value_parser = positive, allow_hyphen_values = true)]
    pub critic_width: usize,
    #[arg(long, default_value_t = 3, value_parser = positive, allow_hyphen_values = true)]
    pub critic_epochs: usize,
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    pub critic_lr: f64,
    /// Pairs per batch (the estimate depends on it).
    #[arg(long, default_value_t = 128, allow_hyphen_values = true)]
    pub batch_size: i64,
    /// K held-out test batches averaged for the estimate.
    #[arg(long, default_value_t = 20, value_parser = positive, allow_hyphen_values = true)]
    pub test_batches: usize,
    /// Training images used for the critic (first N of the training split).
    #[arg(long, default_value_t = 5_000, value_parser = positive, allow_hyphen_values = true)]
    pub train_limit: usize,
}

impl CriticArgs {
    /// The critic's training and estimation settings, validated.
    pub fn config(&self, seed: u64) -> anyhow::Result<CriticConfig> {
        ensure_negatives(self.batch_size)?;
        let config = CriticConfig {
            bound: self.bound,
            epochs: self.critic_epochs,
            batch_size: self.batch_size as usize,
            lr: self.critic_lr,
            test_batches: self.test_batches,
            seed,
        };
        config.validate()?;
        Ok(config)
    }

    /// The critic for images of `shape`.
    pub fn spec(&self, shape: [i64; 3]) -> CriticSpec {
        CriticSpec::image(self.critic, shape, self.critic_width as i64)
    }
}

#[derive(clap::Args, Debug)]
pub struct EstimateArgs {
    #[command(flatten)]
    pub mi: MiArgs,
    /// The worst case under the threat instead of the normal MI.
    #[arg(long)]
    pub worst_case: bool,
}

#[derive(clap::Args, Debug)]
pub struct VulnerabilityArgs {
    #[command(flatten)]
    pub mi: MiArgs,
    /// Also search the worst case without gradients (a random search, about three times
    /// PGD's cost) and keep the lower Î: a check that PGD's gradient did not mislead it.
    #[arg(long)]
    pub black_box: bool,
}

/// What a run does with the threat.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attacks {
    /// Estimates the normal MI only.
    No,
    /// Estimates the worst-case MI.
    WorstCase,
    /// Estimates both (the vulnerability).
    Vulnerability,
}

struct Prepared {
    model: Model,
    /// The measured layer's name.
    layer: String,
    /// The threat (the worst case's, and the vulnerability's), when the run attacks.
    attack: Option<AttackConfig>,
    config: RepresentationMiConfig,
    train: Vec<i64>,
    test: Vec<i64>,
}

fn prepare(
    args: &MiArgs,
    global: &GlobalArgs,
    device: Device,
    attacks: Attacks,
) -> anyhow::Result<(Prepared, crate::data::Dataset)> {
    let critic = args.critic.config(global.seed)?;
    let model = args.source.load(device)?;
    let dataset = args.source.dataset(&model, args.dataset.clone())?;
    let layer = args
        .layer
        .clone()
        .unwrap_or_else(|| model.default_layer().to_string());
    let attack = match attacks {
        Attacks::No => {
            args.threat.refuse_unused("--worst-case")?;
            None
        }
        Attacks::WorstCase | Attacks::Vulnerability => {
            Some(args.threat.config(&dataset, false, 1)?)
        }
    };
    let data = global.load_source(&dataset, device)?;
    model.layer(&layer, &data)?;
    let config = RepresentationMiConfig {
        critic,
        critic_spec: args.critic.spec(data.image_shape()),
        attack: attack.filter(|_| attacks == Attacks::WorstCase),
        attack_gradient: args.attack_gradient,
    };
    let parts = split::train_validation(data.train.len(), 0.1, 0)?;
    let train: Vec<i64> = parts
        .train
        .into_iter()
        .take(args.critic.train_limit)
        .collect();
    let test: Vec<i64> = (0..data.test.len()).collect();
    Ok((
        Prepared {
            model,
            layer,
            attack,
            config,
            train,
            test,
        },
        data,
    ))
}

fn out_path(args: &MiArgs, layer: &str, what: &str) -> PathBuf {
    args.out.clone().unwrap_or_else(|| {
        let dir = args.source.path().parent().unwrap_or(Path::new("."));
        dir.join(format!("{what}-{layer}.json"))
    })
}

/// Prints an estimate's saturation flag with the flags that avoid it.
fn flag_saturation(estimate: &crate::mi::MiEstimate) {
    if let Some(why) = estimate.saturation() {
        println!("FLAG: {why} (--critic global-cosine, --batch-size)");
    }
}

fn mi_row(name: &str, estimate: &crate::mi::MiEstimate) -> Vec<String> {
    vec![
        name.to_string(),
        format!("{:.4}", estimate.mean),
        format!("± {:.4}", estimate.ci95),
    ]
}

pub fn run_estimate(args: EstimateArgs, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let attacks = if args.worst_case {
        Attacks::WorstCase
    } else {
        Attacks::No
    };
    let (p, data) = prepare(&args.mi, global, device, attacks)?;
    let layer = p.model.layer(&p.layer, &data)?;
    let estimate = with_layer_problem(&layer, &data, &p.train, &p.test, |problem| {
        estimate_mi(problem, &p.config, device)
    })?;
    let what = if args.worst_case {
        "worst-case MI"
    } else {
        "MI"
    };
    println!(
        "{what} of {} layer '{}' on {} ({:?}, batch {})",
        p.model.name(),
        p.layer,
        data.source,
        p.config.critic.bound,
        estimate.batch_size
    );
    print!(
        "{}",
        table::markdown(&["estimate", "mean", "95 % CI"], &[mi_row(what, &estimate)])
    );
    flag_saturation(&estimate);
    let out = out_path(
        &args.mi,
        &p.layer,
        if args.worst_case {
            "mi-worst-case"
        } else {
            "mi"
        },
    );
    write_json_atomic(&out, &estimate)?;
    println!("written: {}", out.display());
    Ok(())
}

pub fn run_vulnerability(
    args: VulnerabilityArgs,
    global: &GlobalArgs,
    device: Device,
) -> anyhow::Result<()> {
    let VulnerabilityArgs {
        mi: args,
        black_box,
    } = args;
    anyhow::ensure!(
        !(black_box && args.attack_gradient == AttackGradient::BlackBox),
        "--black-box: the worst case is already searched without gradients \
         (--attack-gradient black-box)"
    );
    let (p, data) = prepare(&args, global, device, Attacks::Vulnerability)?;
    let attack = p.attack.context("the vulnerability needs a threat")?;
    let layer = p.model.layer(&p.layer, &data)?;
    let report = with_layer_problem(&layer, &data, &p.train, &p.test, |problem| {
        vulnerability::measure(
            problem,
            &p.config,
            attack,
            data.num_classes(),
            black_box,
            device,
        )
    })?;
    println!(
        "representation vulnerability of {} layer '{}' on {} ({:?}, batch {}, {:?} ε = {:.4})",
        p.model.name(),
        p.layer,
        data.source,
        report.bound,
        report.normal.batch_size,
        attack.norm,
        attack.eps
    );
    let bound = report
        .robust_accuracy_bound
        .map_or("– (JSD is not in nats)".to_string(), |b| {
            format!("{:.2} %", 100.0 * b)
        });
    let mut rows = vec![
        mi_row("I (normal)", &report.normal),
        mi_row("I_wc (worst case by PGD)", &report.worst_case),
    ];
    if let Some(search) = &report.black_box {
        rows.push(mi_row("I_wc (worst case by black-box search)", search));
    }
    rows.extend([
        vec![
            "RV = I − I_wc".to_string(),
            format!("{:.4}", report.vulnerability),
            format!("± {:.4}", report.vulnerability_ci95),
        ],
        vec![
            "Theorem 3.4: robust accuracy ≤".to_string(),
            bound,
            String::new(),
        ],
    ]);
    print!(
        "{}",
        table::markdown(&["quantity", "value", "95 % CI"], &rows)
    );
    flag_saturation(&report.normal);
    if report.black_box_won {
        println!(
            "FLAG: the black-box search found a lower Î than PGD: PGD's gradient misled it; RV \
             and the bound use the search's estimate"
        );
    }
    let out = out_path(&args, &p.layer, "vulnerability");
    write_json_atomic(&out, &report)?;
    println!("written: {}", out.display());
    Ok(())
}
