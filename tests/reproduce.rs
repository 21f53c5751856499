//! `reproduce` on tiny synthetic data: the whole grid, its outputs, and a rerun that recomputes
//! only what an interruption left unfinished.
use common::{config, files_under, tiny};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tch::Device;
use wcmi::mi::Bound;
use wcmi::reproduce::{grid::Scope, report, reproduce, ReproduceConfig};
use wcmi::train::preset::PresetSettings;

mod common;

/// Modification times of every result and checkpoint under `dir`.
fn stamps(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|e| e == "json" || e == "safetensors")
                && path.file_name().is_some_and(|n| n != "results.json")
        })
        .map(|path| {
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            (path, modified)
        })
        .collect()
}

#[test]
fn runs_the_grid_writes_its_report_and_resumes_without_recomputing() {
    tch::set_num_threads(2);
    let data = tiny();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("repro");
    let first = reproduce(&data, &config(), &out, Device::Cpu).unwrap();
    assert_eq!(first.cells.len(), 16);
    assert_eq!(first.representations.len(), 6);
    // The strong suites run on a prefix of the evaluated images, so an image that survives them
    // is one of the naturally correct ones: compare counts, not accuracies of two sets.
    let correct = |accuracy: f64, examples: usize| (accuracy * examples as f64).round();
    for cell in &first.cells {
        assert!(cell.adversarial_accuracy <= cell.natural_accuracy);
        let natural = correct(cell.natural_accuracy, cell.examples);
        assert!(cell.strong_examples <= cell.examples, "{cell:?}");
        let strong = correct(cell.strong_accuracy.unwrap(), cell.strong_examples);
        assert!(strong <= natural, "{cell:?}");
        let autoattack = correct(cell.autoattack_accuracy.unwrap(), cell.strong_examples);
        assert!(autoattack <= natural, "{cell:?}");
        let p = cell.phases.expect("every new result times its phases");
        let evaluation = [p.pgd, p.strong, p.autoattack];
        assert!(p.training > 0.0, "{cell:?}");
        assert!(
            p.training + evaluation.iter().sum::<f64>() <= cell.seconds,
            "{cell:?}"
        );
        // At one epoch every E.S. twin keeps its last: the standard head is the same weights,
        // and takes the twin's evaluation instead of repeating it.
        match Scope::Grid.trained_with(&cell.cell) {
            Some(twin) => {
                let twin = first.cells.iter().find(|r| r.cell == twin).unwrap();
                assert_eq!(evaluation, [0.0; 3], "{cell:?}");
                assert_eq!(
                    (cell.natural_accuracy, cell.adversarial_accuracy),
                    (twin.natural_accuracy, twin.adversarial_accuracy)
                );
                assert_eq!(
                    (
                        cell.strong_accuracy,
                        cell.autoattack_accuracy,
                        cell.kept_epoch
                    ),
                    (
                        twin.strong_accuracy,
                        twin.autoattack_accuracy,
                        twin.kept_epoch
                    )
                );
            }
            None => assert!(evaluation.iter().all(|&s| s > 0.0), "{cell:?}"),
        }
    }
    let reused = first
        .cells
        .iter()
        .filter(|r| Scope::Grid.trained_with(&r.cell).is_some())
        .count();
    assert_eq!(reused, 4, "the standard heads on the two encoders");
    assert!(out.join("plots/curves-heads-linear.png").is_file());
    let markdown = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        markdown.contains("[95.05]"),
        "the paper's values sit beside ours"
    );
    assert!(
        markdown.contains("MLP AutoAttack") && markdown.contains("Gradient-masking checks on 16")
    );
    let mut stand_in = first.clone();
    stand_in.config.synthetic_data = true;
    let markdown = report::markdown(&stand_in);
    assert!(markdown.contains("stand in") && !markdown.contains("[95.05]"));
    assert!(!markdown.contains("bf16"));
    stand_in.config.settings.precision = wcmi::precision::Precision::Bf16;
    assert!(report::markdown(&stand_in).contains("preset, training steps in bf16,"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(
        html.contains("<th>AutoAttack</th>"),
        "the timings name each phase"
    );
    for plot in ["fig1-vulnerability-gap", "fig2-mi-bound", "curves-encoders"] {
        for ext in ["png", "svg"] {
            assert!(out.join("plots").join(format!("{plot}.{ext}")).is_file());
        }
    }

    // An interruption during one cell's evaluation: its training finished, its result did not.
    let cell = out.join("trial-0/worst-case-mlp-adversarial");
    std::fs::remove_file(cell.join("result.json")).unwrap();
    let before = stamps(&out);
    let second = reproduce(&data, &config(), &out, Device::Cpu).unwrap();
    let after = stamps(&out);
    let changed: Vec<_> = after
        .iter()
        .filter(|(path, time)| before.get(*path) != Some(*time))
        .map(|(path, _)| path.strip_prefix(&out).unwrap().to_path_buf())
        .collect();
    assert_eq!(
        changed,
        vec![PathBuf::from(
            "trial-0/worst-case-mlp-adversarial/result.json"
        )]
    );
    for (a, b) in first.cells.iter().zip(&second.cells) {
        assert_eq!(a.cell, b.cell);
        assert_eq!(a.natural_accuracy, b.natural_accuracy, "{:?}", a.cell);
    }

    let other = ReproduceConfig {
        mi_bound: Bound::Dv,
        ..config()
    };
    let err = reproduce(&data, &other, &out, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("run_folder") && err.contains("other settings"),
        "{err}"
    );
}

#[test]
fn the_headline_scope_trains_only_the_headline_and_says_what_it_shows() {
    tch::set_num_threads(2);
    let data = tiny();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("headline");
    let base = config();
    let config = ReproduceConfig {
        scope: Scope::Headline,
        settings: PresetSettings {
            autoattack: false,
            ..base.settings
        },
        ..base
    };
    let results = reproduce(&data, &config, &out, Device::Cpu).unwrap();
    let names: Vec<String> = results.cells.iter().map(|r| r.cell.name()).collect();
    assert_eq!(
        names,
        [
            "worst-case-mlp-adversarial",
            "dim-mlp-adversarial",
            "dim-mlp-standard"
        ]
    );
    let measured: Vec<&str> = results
        .representations
        .iter()
        .map(|r| r.model.as_str())
        .collect();
    assert_eq!(measured, ["dim", "worst-case"]);
    assert!(!out.join("trial-0/supervised-mlp-standard").exists());
    assert!(results
        .cells
        .iter()
        .all(|r| r.strong_accuracy.is_some() && r.autoattack_accuracy.is_none()));

    let summary = report::headline_markdown(&results);
    assert_eq!(summary.matches("\n| ").count(), 4, "{summary}");
    let worst_case = &results.cells[0];
    let dim_best = results.cells[1]
        .adversarial_accuracy
        .max(results.cells[2].adversarial_accuracy);
    assert!(
        summary.contains(&format!(
            "keeps {:.1} %, {:+.1} points",
            100.0 * worst_case.adversarial_accuracy,
            100.0 * (worst_case.adversarial_accuracy - dim_best)
        )),
        "{summary}"
    );
    assert!(summary.contains("the paper's effect"), "{summary}");
    assert!(!summary.contains("AutoAttack"), "{summary}");
    assert!(out.join("plots/curves-heads-mlp.png").is_file());
    assert!(!out.join("plots/curves-heads-linear.png").exists());
    let markdown = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(markdown.contains("worst-case MI") && !markdown.contains("| supervised"));
}
