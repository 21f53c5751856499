//! `wcmi bench`: ms/step, images/s and peak memory of training steps, beside the PyTorch peer,
//! interleaved round by round on the same machine and thread count.
use super::common::{positive, GlobalArgs};
use crate::atomic::write_json_atomic;
use crate::bench::{time_steps, StepKind, StepTiming};
use crate::precision::Precision;
use crate::report::table;
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;
use std::process::Command;
use tch::Device;

const BATCH: i64 = 128;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Step kinds to time (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [StepKind::Supervised, StepKind::SupervisedAdv])]
    pub kinds: Vec<StepKind>,
    /// Timed steps per round.
    #[arg(long, default_value_t = 10, value_parser = positive, allow_hyphen_values = true)]
    pub steps: usize,
    /// Untimed steps before timing.
    #[arg(long, default_value_t = 2, allow_hyphen_values = true)]
    pub warmup: usize,
    /// Rounds; wcmi and the peer alternate within each, and the median is reported.
    #[arg(long, default_value_t = 3, value_parser = positive, allow_hyphen_values = true)]
    pub rounds: usize,
    /// Python with PyTorch for the peer; the peer is skipped when it cannot run.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Added to the peer's PYTHONPATH (where scripts/setup-bench-peer.sh installs torch).
    #[arg(long, default_value = ".bench-peer")]
    pub peer_path: PathBuf,
    /// Skip the PyTorch peer.
    #[arg(long)]
    pub no_peer: bool,
    /// Arithmetic of both sides' steps (bf16: autocast in wcmi and in the peer).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    #[arg(long, default_value = "runs/bench.json")]
    pub out: PathBuf,
}

/// The hidden child command that times one kind in a fresh process.
#[derive(clap::Args, Debug)]
pub struct StepArgs {
    #[arg(long, value_enum)]
    pub kind: StepKind,
    #[arg(long, default_value_t = 10, allow_hyphen_values = true)]
    pub steps: usize,
    #[arg(long, default_value_t = 2, allow_hyphen_values = true)]
    pub warmup: usize,
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
}

pub fn run_step(args: StepArgs, device: Device) -> anyhow::Result<()> {
    let timing = time_steps(
        args.kind,
        args.steps,
        args.warmup,
        BATCH,
        args.precision,
        device,
    )?;
    println!("{}", serde_json::to_string(&timing)?);
    Ok(())
}

fn parse_timing(output: std::process::Output, who: &str) -> anyhow::Result<StepTiming> {
    anyhow::ensure!(
        output.status.success(),
        "{who} failed: {}",
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("no output")
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .with_context(|| format!("{who} printed nothing"))?;
    serde_json::from_str(line).with_context(|| format!("{who} printed {line:?}"))
}

#[derive(Serialize)]
struct Row {
    kind: String,
    wcmi_ms_per_step: f64,
    wcmi_images_per_second: f64,
    wcmi_peak_rss_mb: f64,
    peer_ms_per_step: Option<f64>,
    peer_images_per_second: Option<f64>,
    peer_peak_rss_mb: Option<f64>,
    /// Peer time over wcmi time: above 1 means wcmi is faster.
    speedup: Option<f64>,
}

#[derive(Serialize)]
struct BenchReport {
    machine: String,
    precision: Precision,
    threads: usize,
    batch_size: i64,
    steps_per_round: usize,
    rounds: usize,
    results: Vec<Row>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The CPU's name with its family and model numbers: virtual machines often report only a
/// brand ("AMD EPYC"), and kernels differ between generations of one brand.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
    };
    let name = field("model name").unwrap_or_else(|| "unknown CPU".to_string());
    match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name} (family {family}, model {model})"),
        _ => name,
    }
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        matches!(
            global.device,
            super::common::DeviceChoice::Auto | super::common::DeviceChoice::Cpu
        ),
        "--device: bench times CPU steps only (both sides run on the CPU)"
    );
    anyhow::ensure!(
        global.seed == 0 && global.data_dir.is_none(),
        "--seed, --data-dir: bench times steps on fixed synthetic batches, the same for wcmi \
         and the peer; drop them"
    );
    let threads = global
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let exe = std::env::current_exe()?;
    let peer_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/peer");
    let pythonpath = std::env::join_paths([
        args.peer_path
            .canonicalize()
            .unwrap_or(args.peer_path.clone()),
        peer_dir.clone(),
    ])?;
    let mut peer_enabled = !args.no_peer;
    let precision = match args.precision {
        Precision::F32 => "f32",
        Precision::Bf16 => "bf16",
    };
    let mut results = Vec::new();
    for kind in &args.kinds {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            eprintln!("{} round {}/{}", kind.name(), round + 1, args.rounds);
            let output = Command::new(&exe)
                .args([
                    "--threads",
                    &threads.to_string(),
                    "--device",
                    "cpu",
                    "bench-step",
                    "--kind",
                    kind.name(),
                    "--precision",
                    precision,
                ])
                .args([
                    "--steps",
                    &args.steps.to_string(),
                    "--warmup",
                    &args.warmup.to_string(),
                ])
                .output()?;
            ours.push(parse_timing(output, "wcmi")?);
            if peer_enabled {
                let output = Command::new(&args.python)
                    .arg(peer_dir.join("peer.py"))
                    .args(["--kind", kind.name(), "--threads", &threads.to_string()])
                    .args(["--precision", precision])
                    .args([
                        "--steps",
                        &args.steps.to_string(),
                        "--warmup",
                        &args.warmup.to_string(),
                    ])
                    .env("PYTHONPATH", &pythonpath)
                    .output();
                match output
                    .map_err(anyhow::Error::from)
                    .and_then(|o| parse_timing(o, "the PyTorch peer"))
                {
                    Ok(t) => theirs.push(t),
                    Err(e) => {
                        eprintln!("skipping the PyTorch peer ({e}); install it with scripts/setup-bench-peer.sh");
                        peer_enabled = false;
                    }
                }
            }
        }
        let ms = median(ours.iter().map(|t| t.ms_per_step).collect());
        let peer_ms = (theirs.len() == args.rounds)
            .then(|| median(theirs.iter().map(|t| t.ms_per_step).collect()));
        let mb =
            |t: &[StepTiming]| t.iter().map(|t| t.peak_rss_kb).max().unwrap_or(0) as f64 / 1024.0;
        results.push(Row {
            kind: kind.name().to_string(),
            wcmi_ms_per_step: ms,
            wcmi_images_per_second: 1000.0 * BATCH as f64 / ms,
            wcmi_peak_rss_mb: mb(&ours),
            peer_ms_per_step: peer_ms,
            peer_images_per_second: peer_ms.map(|p| 1000.0 * BATCH as f64 / p),
            peer_peak_rss_mb: peer_ms.map(|_| mb(&theirs)),
            speedup: peer_ms.map(|p| p / ms),
        });
    }
    let report = BenchReport {
        machine: format!("{}, {threads} threads", cpu_model()),
        precision: args.precision,
        threads,
        batch_size: BATCH,
        steps_per_round: args.steps,
        rounds: args.rounds,
        results,
    };
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
    let rows: Vec<Vec<String>> = report
        .results
        .iter()
        .map(|r| {
            vec![
                r.kind.clone(),
                format!("{:.1}", r.wcmi_ms_per_step),
                format!("{:.0}", r.wcmi_images_per_second),
                opt(r.peer_ms_per_step, 1),
                opt(r.peer_images_per_second, 0),
                opt(r.speedup, 2),
                format!("{:.0}", r.wcmi_peak_rss_mb),
                opt(r.peer_peak_rss_mb, 0),
            ]
        })
        .collect();
    println!(
        "{} (batch {BATCH}, {precision}, median of {} rounds × {} steps)",
        report.machine, args.rounds, args.steps
    );
    print!(
        "{}",
        table::markdown(
            &[
                "step",
                "wcmi ms",
                "wcmi img/s",
                "PyTorch ms",
                "PyTorch img/s",
                "speed-up",
                "wcmi peak MB",
                "PyTorch peak MB"
            ],
            &rows
        )
    );
    write_json_atomic(&args.out, &report)?;
    println!("written: {}", args.out.display());
    Ok(())
}
