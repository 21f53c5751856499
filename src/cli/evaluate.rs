//! `wcmi evaluate --checkpoint C | --model M.pt [--attack …]`: natural accuracy and accuracy under attacks,
//! printed as a table and written as JSON.
use super::common::{positive, GlobalArgs, ModelArgs, ThreatArgs};
use crate::atomic::write_json_atomic;
use crate::attack::classifier::{
    autoattack_suite, strong_suite, AttackChoice, ClassifierAttack, Suite, AUTOATTACK_STEPS,
    SQUARE_QUERIES, STRONG_RESTARTS,
};
use crate::data::DataSource;
use crate::eval::masking::{self, MaskingChecks};
use crate::eval::robustness::{self, RobustnessReport};
use crate::report::{plot, table};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The classifier.
    #[command(flatten)]
    pub source: ModelArgs,
    /// Dataset to evaluate on: a name or an image folder (`DIR/train/<class>/*.png|jpg`,
    /// `DIR/test/…`; needs --eps, --steps and --step-size) (default: the checkpoint's own).
    #[arg(long)]
    pub dataset: Option<DataSource>,
    /// Attacks to run (comma-separated); none gives natural accuracy only.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub attack: Vec<AttackChoice>,
    #[command(flatten)]
    pub threat: ThreatArgs,
    /// Independent runs of each attack (the strong evaluation's random-start PGD uses 5 when
    /// this is 1).
    #[arg(long, default_value_t = 1, value_parser = positive, allow_hyphen_values = true)]
    pub restarts: usize,
    /// Start PGD at a random point of the ball.
    #[arg(long)]
    pub random_start: bool,
    /// Iterations of APGD.
    #[arg(long, default_value_t = AUTOATTACK_STEPS, value_parser = positive, allow_hyphen_values = true)]
    pub apgd_steps: usize,
    /// Queries of Square.
    #[arg(long, default_value_t = SQUARE_QUERIES, value_parser = positive, allow_hyphen_values = true)]
    pub queries: usize,
    /// Also run the sanity checks: accuracy against ε up to the radius where every image can
    /// reach the same gray image, and PGD-100 against PGD-10; plotted beside the JSON.
    #[arg(long)]
    pub sanity: bool,
    /// Evaluate on the first N test images only.
    #[arg(long, value_parser = positive, allow_hyphen_values = true)]
    pub limit: Option<usize>,
    /// Where to write the JSON result (default: beside the checkpoint, eval-<dataset>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 500, value_parser = positive, allow_hyphen_values = true)]
    pub batch_size: usize,
}

#[derive(Serialize)]
struct EvaluationResult {
    /// The model file: a checkpoint or a TorchScript file.
    checkpoint: PathBuf,
    model: String,
    dataset: DataSource,
    /// Seed of the attacks' random starts and searches.
    seed: u64,
    #[serde(flatten)]
    report: RobustnessReport,
    /// Signs that the attacks failed (suites only).
    #[serde(skip_serializing_if = "Option::is_none")]
    masking: Option<MaskingChecks>,
}

fn attacks(args: &Args, data: &DataSource) -> anyhow::Result<Vec<ClassifierAttack>> {
    if args.attack.is_empty() {
        args.threat.refuse_unused("--attack")?;
        return Ok(Vec::new());
    }
    let base = args.threat.config(data, args.random_start, args.restarts)?;
    let mut out = Vec::new();
    for &choice in &args.attack {
        match choice {
            AttackChoice::Method(method) => out.push(ClassifierAttack {
                method,
                config: method.config(&base, args.apgd_steps, args.queries),
            }),
            AttackChoice::Suite(Suite::Autoattack) => {
                out.extend(autoattack_suite(&base, args.apgd_steps, args.queries));
            }
            AttackChoice::Suite(Suite::Strong) => {
                let paper = crate::attack::AttackConfig {
                    random_start: false,
                    restarts: 1,
                    ..base
                };
                out.extend(strong_suite(
                    &paper,
                    args.restarts.max(STRONG_RESTARTS),
                    args.apgd_steps,
                ));
            }
        }
    }
    out.dedup();
    Ok(out)
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let suite = args
        .attack
        .iter()
        .any(|a| matches!(a, AttackChoice::Suite(_)));
    anyhow::ensure!(
        !args.sanity || suite,
        "--sanity: the sanity checks come with a suite; add --attack strong or autoattack"
    );
    let source = args.source.load(device)?;
    let dataset = args.source.dataset(&source, args.dataset.clone())?;
    let attacks = attacks(&args, &dataset)?;
    let data = global.load_source(&dataset, device)?;
    let model = source.classifier(&data)?;
    let test = match args.limit {
        Some(n) => data.test.head(n as i64),
        None => data.test,
    };
    let all: Vec<i64> = (0..test.len()).collect();
    crate::seed::seed_torch(global.seed, crate::seed::Stream::Attack, 0);
    let report = if suite {
        robustness::cascade(model, &test, &all, args.batch_size, &attacks)?
    } else {
        robustness::evaluate(model, &test, None, args.batch_size, &attacks)?
    };
    let masking = suite
        .then(|| -> anyhow::Result<MaskingChecks> {
            let zero = masking::zero_gradient_images(model, &test, &all, args.batch_size)?;
            let sanity = args
                .sanity
                .then(|| masking::sanity(model, &test, &all, args.batch_size, &attacks[0].config))
                .transpose()?;
            Ok(MaskingChecks::new(zero, &report, sanity))
        })
        .transpose()?;
    let mut rows = vec![vec![
        "natural".to_string(),
        format!("{:.2}", 100.0 * report.natural_accuracy),
        String::new(),
    ]];
    rows.extend(report.attacks.iter().map(|a| {
        vec![
            a.attack.clone(),
            format!("{:.2}", 100.0 * a.accuracy),
            format!("{:.1}", a.seconds),
        ]
    }));
    if report.attacks.len() > 1 {
        rows.push(vec![
            "worst case".to_string(),
            format!("{:.2}", 100.0 * report.worst_case_accuracy),
            format!(
                "{:.1}",
                report.attacks.iter().map(|a| a.seconds).sum::<f64>()
            ),
        ]);
    }
    let threat = attacks.first().map_or(String::new(), |a| {
        format!(", {:?} ε = {:.4}", a.config.norm, a.config.eps)
    });
    println!(
        "{} on {dataset} test ({} images{threat})",
        source.name(),
        report.examples
    );
    let column = if report.cascade {
        "accuracy % (after this attack and those above)"
    } else {
        "accuracy %"
    };
    print!("{}", table::markdown(&["attack", column, "seconds"], &rows));
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_result_path(args.source.path(), &dataset));
    if let Some(checks) = &masking {
        print_checks(checks, &out)?;
    }
    write_result(
        args.source.path(),
        &source.name(),
        &dataset,
        global.seed,
        report,
        masking,
        &out,
    )
}

/// Prints the masking checks' verdict and plots the sanity curve beside `out`.
fn print_checks(checks: &MaskingChecks, out: &Path) -> anyhow::Result<()> {
    if checks.flags.is_empty() {
        println!("gradient-masking checks: no flag raised");
    }
    for flag in &checks.flags {
        println!("FLAG: {flag}");
    }
    if let Some(sanity) = &checks.sanity {
        println!(
            "sanity: PGD-10 {:.2} %, PGD-100 {:.2} %; accuracy against ε: {}",
            100.0 * sanity.pgd_10,
            100.0 * sanity.pgd_100,
            sanity
                .curve
                .iter()
                .map(|(e, a)| format!("{e:.3} → {:.1} %", 100.0 * a))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let chart = plot::Chart {
            title: "Sanity check: accuracy under PGD-20 against the radius".to_string(),
            x_label: "ε".to_string(),
            y_label: "accuracy (%)".to_string(),
            series: vec![
                plot::Series {
                    label: "PGD-20, random start".to_string(),
                    points: sanity.curve.iter().map(|&(e, a)| (e, 100.0 * a)).collect(),
                    mark: plot::Mark::Line,
                },
                plot::Series {
                    label: "largest class (a constant prediction)".to_string(),
                    points: [0.0, sanity.curve.last().map_or(0.0, |p| p.0)]
                        .iter()
                        .map(|&e| (e, 100.0 * sanity.chance))
                        .collect(),
                    mark: plot::Mark::Dashed,
                },
            ],
        };
        let name = out
            .file_stem()
            .map_or("evaluation".into(), |s| s.to_string_lossy().into_owned());
        let stem = out.with_file_name(format!("{name}-sanity"));
        let [png, svg] = plot::write(&chart, &stem)?;
        println!("plotted: {} and {}", png.display(), svg.display());
    }
    Ok(())
}

/// Where an evaluation of a model file on `dataset` is written unless told otherwise: beside it.
pub fn default_result_path(model: &Path, dataset: &DataSource) -> PathBuf {
    model.with_file_name(format!("eval-{}.json", dataset.slug()))
}

/// Writes an evaluation's JSON (atomically) and says where.
pub fn write_result(
    checkpoint: &Path,
    model: &str,
    dataset: &DataSource,
    seed: u64,
    report: RobustnessReport,
    masking: Option<MaskingChecks>,
    out: &Path,
) -> anyhow::Result<()> {
    let result = EvaluationResult {
        checkpoint: checkpoint.to_path_buf(),
        model: model.to_string(),
        dataset: dataset.clone(),
        seed,
        report,
        masking,
    };
    write_json_atomic(out, &result)?;
    println!("written: {}", out.display());
    Ok(())
}
