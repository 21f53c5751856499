//! `wcmi mixture-check`: estimated against exact representation vulnerability on the binary
//! Gaussian mixture, for each attack-gradient option.
use super::common::GlobalArgs;
use crate::atomic::write_json_atomic;
use crate::eval::mixture_check::{self, MixtureCheck};
use crate::mi::worst_case::AttackGradient;
use crate::report::table;
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ℓ∞ radii to check.
    #[arg(long, value_delimiter = ',', default_values_t = [0.0, 0.1, 0.2, 0.4])]
    pub eps: Vec<f64>,
    #[arg(long, default_value = "runs/mixture-check.json")]
    pub out: PathBuf,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<()> {
    let mut check = MixtureCheck::default();
    check.critic.seed = global.seed;
    let rows = mixture_check::run(
        &check,
        &args.eps,
        &[
            AttackGradient::Representation,
            AttackGradient::Full,
            AttackGradient::BlackBox,
        ],
    )?;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("{:.2}", r.eps),
                r.attack_gradient
                    .to_possible_value()
                    .map_or(String::new(), |v| v.get_name().to_string()),
                format!("{:.4}", r.exact_vulnerability),
                format!("{:.4} ± {:.4}", r.estimated_vulnerability, r.ci95),
                format!("{:.4}", r.normal_mi),
                format!("{:.4}", r.worst_case_mi),
            ]
        })
        .collect();
    println!(
        "binary Gaussian mixture, θ = {:?}, σ = {:?}, g(x) = sign(θᵀx), DV, batch {}",
        check.theta, check.sigma, check.critic.batch_size
    );
    print!(
        "{}",
        table::markdown(
            &[
                "ε (ℓ∞)",
                "attack gradient",
                "exact RV",
                "estimated RV (95 % CI)",
                "Î normal",
                "Î worst"
            ],
            &cells
        )
    );
    write_json_atomic(
        &args.out,
        &serde_json::json!({ "settings": check, "rows": rows }),
    )?;
    println!("written: {}", args.out.display());
    Ok(())
}
