//! What a reproduction shows: the results table beside the paper's (mean ± std over trials),
//! the vulnerability table, training curves, the paper's Fig. 1 (RV against the natural –
//! adversarial gap) and Fig. 2 (worst-case MI against robust accuracy under the Theorem 3.4
//! bound), and one self-contained HTML page with all of them.
use super::folder::{Measured, ReproductionFolder};
use super::grid::{self, Cell, Representation};
use super::paper::paper_cell;
use super::{CellResult, Results};
use crate::atomic::write_atomic;
use crate::attack::classifier::{SQUARE_QUERIES, STRONG_RESTARTS};
use crate::error::Result;
use crate::eval::vulnerability::VulnerabilityReport;
use crate::mi::theory::bound_curve;
use crate::nn::HeadKind;
use crate::report::plot::{self, Chart, Mark, Series};
use crate::report::{jsonl, table};
use crate::train::classifier::EpochRecord;
use crate::train::classifier::Training;
use crate::train::encoder::EncoderEpoch;
use crate::train::run::RunFiles;

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn cells_of<'a>(results: &'a Results, cell: &Cell) -> Vec<&'a CellResult> {
    results.cells.iter().filter(|r| r.cell == *cell).collect()
}

/// "mean ± std" in %, or "–" when nothing was measured.
fn percent(values: &[f64]) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let (mean, std) = mean_std(values);
    if values.len() > 1 {
        format!("{:.2} ± {:.2}", 100.0 * mean, 100.0 * std)
    } else {
        format!("{:.2}", 100.0 * mean)
    }
}

/// The results table: one row per (representation, training), MLP then linear columns, each
/// measured number followed by the paper's in brackets.
pub fn results_table(results: &Results) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "encoder",
        "head training",
        "MLP natural [paper]",
        "MLP PGD [paper]",
        "MLP strong",
        "MLP AutoAttack",
        "linear natural [paper]",
        "linear PGD [paper]",
        "linear strong",
        "linear AutoAttack",
    ];
    let rows = rows_in_scope(results)
        .into_iter()
        .map(|(representation, training)| {
            let mut row = vec![
                representation.label().to_string(),
                training.label().to_string(),
            ];
            for head in [HeadKind::Mlp, HeadKind::Linear] {
                let cell = Cell {
                    representation,
                    training,
                    head,
                };
                row.extend(accuracy_columns(results, &cell));
            }
            row
        })
        .collect();
    (header, rows)
}

/// The rows of the tables that the reproduction's scope trains, in the paper's order.
fn rows_in_scope(results: &Results) -> Vec<(Representation, Training)> {
    let cells = results.config.scope.cells();
    grid::rows()
        .into_iter()
        .filter(|&(representation, training)| {
            cells
                .iter()
                .any(|c| c.representation == representation && c.training == training)
        })
        .collect()
}

/// A cell's natural and paper-PGD accuracy (each with the paper's in brackets), strong and
/// AutoAttack accuracy, as mean ± std over trials.
fn accuracy_columns(results: &Results, cell: &Cell) -> [String; 4] {
    let measured = cells_of(results, cell);
    let paper = (!results.config.synthetic_data)
        .then(|| {
            paper_cell(
                results.config.dataset,
                cell.representation,
                cell.training,
                cell.head,
            )
        })
        .flatten();
    let with_paper = |accuracy: fn(&CellResult) -> f64, paper: Option<f64>| {
        let paper = paper.map_or(String::new(), |p| format!(" [{p:.2}]"));
        let values: Vec<f64> = measured.iter().map(|r| accuracy(r)).collect();
        format!("{}{paper}", percent(&values))
    };
    let optional = |accuracy: fn(&CellResult) -> Option<f64>| {
        percent(
            &measured
                .iter()
                .filter_map(|r| accuracy(r))
                .collect::<Vec<_>>(),
        )
    };
    [
        with_paper(|r| r.natural_accuracy, paper.map(|p| p.natural)),
        with_paper(|r| r.adversarial_accuracy, paper.map(|p| p.adversarial)),
        optional(|r| r.strong_accuracy),
        optional(|r| r.autoattack_accuracy),
    ]
}

/// Mean over trials of a cell's accuracy, if it was measured.
fn mean_accuracy(results: &Results, cell: &Cell, accuracy: fn(&CellResult) -> f64) -> Option<f64> {
    let values: Vec<f64> = cells_of(results, cell).into_iter().map(accuracy).collect();
    (!values.is_empty()).then(|| mean_std(&values).0)
}

/// The headline comparison (SPEC §6, claims 1 and 2) as one small table, the encoders'
/// vulnerability beside their heads, and one sentence on what it shows: `wcmi demo`'s summary.
pub fn headline_markdown(results: &Results) -> String {
    let autoattack = results.config.settings.autoattack;
    let mut header = vec![
        "encoder",
        "MLP head",
        "natural % [paper]",
        "PGD % [paper]",
        "strong %",
        "AutoAttack %",
        "encoder RV (nats)",
        "Theorem 3.4 bound %",
    ];
    if !autoattack {
        header.retain(|&h| h != "AutoAttack %");
    }
    let cells = grid::headline_cells();
    let rows: Vec<Vec<String>> = cells
        .iter()
        .map(|cell| {
            let mut row = vec![
                cell.representation.label().to_string(),
                cell.training.label().to_string(),
            ];
            let [natural, pgd, strong, autoattack_column] = accuracy_columns(results, cell);
            row.extend([natural, pgd, strong]);
            if autoattack {
                row.push(autoattack_column);
            }
            let of = reports_of(results, cell.representation.name());
            row.push(nats(of.iter().map(|r| r.vulnerability).collect()));
            row.push(percent(
                &of.iter()
                    .filter_map(|r| r.robust_accuracy_bound)
                    .collect::<Vec<_>>(),
            ));
            row
        })
        .collect();
    let [worst_case, dim_robust, dim_standard] = cells;
    let pgd = |cell: &Cell| mean_accuracy(results, cell, |r| r.adversarial_accuracy);
    let natural = |cell: &Cell| mean_accuracy(results, cell, |r| r.natural_accuracy);
    let rv =
        |representation: Representation| mi_of(results, representation.name()).map(|(_, _, rv)| rv);
    let finding = match (
        pgd(&worst_case),
        pgd(&dim_robust).zip(pgd(&dim_standard)),
        natural(&worst_case).zip(natural(&dim_standard)),
        rv(Representation::WorstCase).zip(rv(Representation::Dim)),
    ) {
        (Some(wc), Some((dim_r, dim_s)), Some((wc_nat, dim_nat)), Some((wc_rv, dim_rv))) => {
            let dim_best = dim_r.max(dim_s);
            let shows = wc > dim_best && wc_rv < dim_rv;
            format!(
                "{}: under the paper's PGD the worst-case encoder's robust head keeps {:.1} %, \
                 {:+.1} points against the better of DIM's heads ({:.1} %), at {:.1} % natural \
                 accuracy against {:.1} % for DIM's standard head, and its representation is \
                 {} vulnerable (RV {wc_rv:.2} against {dim_rv:.2} nats).",
                if shows {
                    "This shows the paper's effect"
                } else {
                    "This run does not show the paper's effect"
                },
                100.0 * wc,
                100.0 * (wc - dim_best),
                100.0 * dim_best,
                100.0 * wc_nat,
                100.0 * dim_nat,
                if wc_rv < dim_rv { "less" } else { "not less" },
            )
        }
        _ => "The headline comparison is not complete yet.".to_string(),
    };
    format!("{}\n{finding}\n", table::markdown(&header, &rows))
}

/// Nats as "mean ± std" over trials, or "–" when nothing was measured.
fn nats(values: Vec<f64>) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let (mean, std) = mean_std(&values);
    if values.len() > 1 {
        format!("{mean:.3} ± {std:.3}")
    } else {
        format!("{mean:.3}")
    }
}

/// Per-representation MI (nats), RV and the Theorem 3.4 bound, averaged over trials.
pub fn vulnerability_table(results: &Results) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "representation",
        "I (nats)",
        "I_wc (nats)",
        "RV (nats)",
        "Theorem 3.4 bound %",
    ];
    let mut models: Vec<&str> = Vec::new();
    for r in &results.representations {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
    }
    let rows = models
        .into_iter()
        .map(|model| {
            let of = reports_of(results, model);
            vec![
                model.to_string(),
                nats(of.iter().map(|r| r.normal.mean).collect()),
                nats(of.iter().map(|r| r.worst_case.mean).collect()),
                nats(of.iter().map(|r| r.vulnerability).collect()),
                percent(
                    &of.iter()
                        .filter_map(|r| r.robust_accuracy_bound)
                        .collect::<Vec<_>>(),
                ),
            ]
        })
        .collect();
    (header, rows)
}

/// Every trial's vulnerability report of a named representation.
fn reports_of<'a>(results: &'a Results, model: &str) -> Vec<&'a VulnerabilityReport> {
    results
        .representations
        .iter()
        .filter(|r| r.model == model)
        .map(|r| &r.report)
        .collect()
}

/// The representation a cell's classifier is built on, as named in `representations`.
fn representation_model(cell: &Cell) -> String {
    match cell.representation {
        Representation::Supervised => cell.name(),
        other => other.name().to_string(),
    }
}

/// (mean I, mean I_wc, mean RV) of a named representation.
fn mi_of(results: &Results, model: &str) -> Option<(f64, f64, f64)> {
    let of = reports_of(results, model);
    (!of.is_empty()).then(|| {
        let mean = |f: &dyn Fn(&&VulnerabilityReport) -> f64| {
            of.iter().map(f).sum::<f64>() / of.len() as f64
        };
        (
            mean(&|r| r.normal.mean),
            mean(&|r| r.worst_case.mean),
            mean(&|r| r.vulnerability),
        )
    })
}

/// One series of points per representation kind: `point(cell, I_wc, RV, natural, adversarial)`.
fn points_by_representation(
    results: &Results,
    point: impl Fn(f64, f64, f64, f64) -> (f64, f64),
) -> Vec<Series> {
    Representation::ALL
        .iter()
        .map(|&representation| {
            let points = grid::cells()
                .iter()
                .filter(|c| c.representation == representation)
                .filter_map(|cell| {
                    let (_, worst, rv) = mi_of(results, &representation_model(cell))?;
                    let measured = cells_of(results, cell);
                    let nat: Vec<f64> = measured.iter().map(|r| r.natural_accuracy).collect();
                    let adv: Vec<f64> = measured.iter().map(|r| r.adversarial_accuracy).collect();
                    (!nat.is_empty()).then(|| point(worst, rv, mean_std(&nat).0, mean_std(&adv).0))
                })
                .collect();
            Series {
                label: representation.label().to_string(),
                points,
                mark: Mark::Points,
            }
        })
        .collect()
}

/// Fig. 1: representation vulnerability against the natural – adversarial accuracy gap.
fn vulnerability_gap_chart(results: &Results) -> Chart {
    Chart {
        title: format!(
            "{}: vulnerability and robustness gap",
            results.config.dataset
        ),
        x_label: "representation vulnerability RV (nats)".into(),
        y_label: "natural − PGD accuracy (percentage points)".into(),
        series: points_by_representation(results, |_, rv, nat, adv| (rv, 100.0 * (nat - adv))),
    }
}

/// Fig. 2: worst-case MI against measured robust accuracy, under the Theorem 3.4 bound.
fn bound_chart(results: &Results) -> Chart {
    let classes = results.config.dataset.num_classes() as usize;
    let top = results
        .representations
        .iter()
        .map(|r| r.report.normal.mean.max(r.report.worst_case.mean))
        .fold(1.0f64, f64::max);
    // From the lowest estimate (negative ones mean no information: the bound is flat there).
    let bottom = results
        .representations
        .iter()
        .map(|r| r.report.worst_case.mean)
        .fold(0.0f64, f64::min);
    let curve = bound_curve(bottom, top, classes)
        .into_iter()
        .map(|(mi, accuracy)| (mi, 100.0 * accuracy))
        .collect();
    // The bound comes last so that each representation keeps its colour from Fig. 1.
    let mut series = points_by_representation(results, |worst, _, _, adv| (worst, 100.0 * adv));
    series.push(Series {
        label: "Theorem 3.4 bound".into(),
        points: curve,
        mark: Mark::Dashed,
    });
    Chart {
        title: format!(
            "{}: worst-case MI and robust accuracy",
            results.config.dataset
        ),
        x_label: "worst-case MI I_wc of the representation (nats)".into(),
        y_label: "PGD accuracy (%)".into(),
        series,
    }
}

fn head_title(head: HeadKind) -> &'static str {
    match head {
        HeadKind::Linear => "linear",
        HeadKind::Mlp => "MLP",
    }
}

/// Training curves of trial 0: encoders' MI, and the validation PGD accuracy of the classifiers
/// chosen by it (standard training does not measure it); a head kind with no such classifier in
/// the scope gets no chart.
fn curve_charts(results: &Results, folder: &ReproductionFolder) -> Result<Vec<(String, Chart)>> {
    let trial = folder.trial(0);
    let series = |label: String, points: Vec<(f64, f64)>| Series {
        label,
        points,
        mark: Mark::Line,
    };
    let mut encoder_series = Vec::new();
    for representation in [Representation::Dim, Representation::WorstCase] {
        let log: Vec<EncoderEpoch> =
            jsonl::read(&trial.measured(Measured::Encoder(representation)).log)?;
        let label = |what: &str| format!("{}: {what}", representation.label());
        encoder_series.push(series(
            label("training Î"),
            log.iter().map(|r| (r.epoch as f64, r.train_mi)).collect(),
        ));
        encoder_series.push(series(
            label("validation worst-case Î"),
            log.iter()
                .filter_map(|r| Some((r.epoch as f64, r.val_worst_case_mi?)))
                .collect(),
        ));
    }
    let mut charts = vec![(
        "curves-encoders".to_string(),
        Chart {
            title: format!("{}: encoder training", results.config.dataset),
            x_label: "epoch".into(),
            y_label: results
                .config
                .settings
                .encoder_bound
                .estimate_label()
                .into(),
            series: encoder_series,
        },
    )];
    for head in [HeadKind::Mlp, HeadKind::Linear] {
        let mut head_series = Vec::new();
        let in_scope = results.config.scope.cells();
        for c in grid::cells()
            .iter()
            .filter(|c| c.head == head && in_scope.contains(c))
        {
            let log: Vec<EpochRecord> = jsonl::read(&RunFiles::new(&trial.cell(c)).log)?;
            let points: Vec<(f64, f64)> = log
                .iter()
                .filter_map(|r| Some((r.epoch as f64, 100.0 * r.val_adversarial_accuracy?)))
                .collect();
            if !points.is_empty() {
                let label = format!("{}, {}", c.representation.label(), c.training.label());
                head_series.push(series(label, points));
            }
        }
        if head_series.is_empty() {
            continue;
        }
        charts.push((
            format!("curves-heads-{}", head.name()),
            Chart {
                title: format!("{}: {} heads", results.config.dataset, head_title(head)),
                x_label: "epoch".into(),
                y_label: "validation PGD accuracy (%)".into(),
                series: head_series,
            },
        ));
    }
    Ok(charts)
}

/// Each classifier's gradient-masking flags, as "trial T, CELL: flag" lines.
fn masking_flags(results: &Results) -> Vec<String> {
    results
        .cells
        .iter()
        .flat_map(|r| {
            r.masking_flags
                .iter()
                .map(move |flag| format!("trial {}, {}: {flag}", r.trial, r.cell.name()))
        })
        .collect()
}

/// One sentence on what the masking checks found, for the captions.
fn masking_summary(results: &Results) -> String {
    let checked = results
        .cells
        .iter()
        .filter(|r| r.autoattack_accuracy.is_some())
        .count();
    let flags = masking_flags(results).len();
    match (checked, flags) {
        (0, _) => "No classifier was checked for gradient masking.".into(),
        (n, 0) => format!("Gradient-masking checks on {n} classifier(s): no flag raised."),
        (n, f) => format!("Gradient-masking checks on {n} classifier(s): {f} flag(s) raised:"),
    }
}

/// The suites' description shared by both reports' captions.
fn suites_caption(results: &Results) -> String {
    let settings = &results.config.settings;
    let autoattack = if settings.autoattack {
        format!(
            "AutoAttack is its standard suite as wcmi runs it (APGD-CE, APGD-T over 9 targets, \
             Square with {SQUARE_QUERIES} queries; no FAB-T), both"
        )
    } else {
        "AutoAttack was not run at this preset (`wcmi evaluate --attack autoattack` runs it \
         on a head); strong is"
            .to_string()
    };
    format!(
        "strong is the per-sample worst case over PGD, PGD with {STRONG_RESTARTS} random \
         restarts, APGD-CE and APGD-DLR; {autoattack} on the first {} test images",
        settings.strong_limit
    )
}

/// The Markdown report: both tables with their captions.
pub fn markdown(results: &Results) -> String {
    let c = &results.config;
    let (header, rows) = results_table(results);
    let (vheader, vrows) = vulnerability_table(results);
    let stand_in = if c.synthetic_data {
        "Synthetic class-template images stand in for the dataset: no paper values.\n\n"
    } else {
        ""
    };
    let arithmetic = if c.settings.precision.is_f32() {
        ""
    } else {
        ", training steps in bf16"
    };
    format!(
        "# {} ({} preset{arithmetic}, {} trial(s), seeds from {})\n\n{stand_in}\
         Accuracy in % on the test set: natural, under the paper's PGD ({}), under the strong \
         suite and AutoAttack ({}). Measured mean ± std over trials; the paper's value in \
         brackets.\n\n{}\n{}\n\n\
         Representation vulnerability of each representation (the encoder's 64-d output), \
         {} bound, {} critic, {} test batches; Theorem 3.4 bounds the robust accuracy of any classifier \
         on it.\n\n{}",
        c.dataset,
        table::flag_value(&c.preset),
        c.trials,
        c.seed,
        crate::attack::classifier::ClassifierAttack {
            method: crate::attack::classifier::Method::Pgd,
            config: results.attack
        }
        .label(),
        suites_caption(results),
        table::markdown(&header, &rows),
        std::iter::once(masking_summary(results))
            .chain(masking_flags(results).iter().map(|f| format!("- {f}")))
            .collect::<Vec<_>>()
            .join("\n"),
        table::flag_value(&c.mi_bound),
        table::flag_value(&c.mi_critic),
        c.settings.mi_test_batches,
        table::markdown(&vheader, &vrows)
    )
}

fn flags_html(results: &Results) -> String {
    let flags = masking_flags(results);
    if flags.is_empty() {
        return String::new();
    }
    let items: String = flags
        .iter()
        .map(|f| format!("<li>{}</li>", table::escape_html(f)))
        .collect();
    format!("<ul>{items}</ul>\n")
}

/// The timings table's columns: a step's seconds, then a classifier's phases (`PhaseSeconds`).
const TIMING_HEADER: [&str; 8] = [
    "step",
    "seed",
    "kept epoch",
    "seconds",
    "training",
    "PGD",
    "strong",
    "AutoAttack",
];

fn html(results: &Results, charts: &[(String, Chart)]) -> Result<String> {
    let (header, rows) = results_table(results);
    let (vheader, vrows) = vulnerability_table(results);
    let mut plots = String::new();
    for (name, chart) in charts {
        plots += &plot::figure(chart, name)?;
    }
    let timing_rows: Vec<Vec<String>> = results
        .cells
        .iter()
        .map(|r| {
            let mut row = vec![
                format!("trial {}: {}", r.trial, r.cell.name()),
                r.seed.to_string(),
                r.kept_epoch.to_string(),
                format!("{:.0}", r.seconds),
            ];
            if let Some(p) = r.phases {
                row.extend([p.training, p.pgd, p.strong, p.autoattack].map(|s| format!("{s:.0}")));
            }
            row.resize(TIMING_HEADER.len(), "–".to_string());
            row
        })
        .chain(results.representations.iter().map(|r| {
            let mut row = vec![
                format!("trial {}: vulnerability of {}", r.trial, r.model),
                (results.config.seed + r.trial as u64).to_string(),
                r.report.worst_case.chosen_epoch.to_string(),
                format!("{:.0}", r.seconds),
            ];
            row.resize(TIMING_HEADER.len(), "–".to_string());
            row
        }))
        .collect();
    let settings = serde_json::to_string_pretty(&results.config).unwrap_or_default();
    let body = format!(
        "<h1>wcmi reproduction: {dataset}</h1>\n\
         <h2>Downstream accuracy (%)</h2>\n<p>Measured mean ± std over trials, the paper's value \
         in brackets; PGD is the paper's attack, {suites}.</p>\n{table}<p>{masking}</p>{flags}\
         <h2>Representation vulnerability</h2>\n{vtable}\
         <h2>Plots</h2>\n{plots}\
         <h2>Settings and seeds</h2>\n<pre>{settings}</pre>\n\
         <h2>Timings</h2>\n<p>Seconds of training and evaluation per step, and of each phase of a \
         classifier's; for vulnerability rows the kept epoch is the worst-case critic's.</p>\n\
         {timings}\
         <p>wcmi {version}</p>\n",
        dataset = results.config.dataset,
        table = table::html(&header, &rows),
        suites = table::escape_html(&suites_caption(results)),
        masking = table::escape_html(&masking_summary(results)),
        flags = flags_html(results),
        vtable = table::html(&vheader, &vrows),
        settings = table::escape_html(&settings),
        timings = table::html(&TIMING_HEADER, &timing_rows),
        version = results.wcmi_version,
    );
    Ok(table::html_page(
        &format!("wcmi: {}", results.config.dataset),
        &body,
    ))
}

/// Writes the Markdown table, the plots (PNG and SVG) and the HTML report into `folder`.
pub fn write(results: &Results, folder: &ReproductionFolder) -> Result<()> {
    write_atomic(&folder.markdown(), markdown(results).as_bytes())?;
    let mut charts = curve_charts(results, folder)?;
    charts.push((
        "fig1-vulnerability-gap".into(),
        vulnerability_gap_chart(results),
    ));
    charts.push(("fig2-mi-bound".into(), bound_chart(results)));
    for (name, chart) in &charts {
        plot::write(chart, &folder.plot(name))?;
    }
    write_atomic(&folder.report(), html(results, &charts)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::classifier::Training;

    #[test]
    fn mean_and_sample_std() {
        assert_eq!(mean_std(&[1.0]), (1.0, 0.0));
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 1.0).abs() < 1e-12);
        assert_eq!(percent(&[0.5, 0.7]), "60.00 ± 14.14");
        assert_eq!(percent(&[]), "–");
    }

    #[test]
    fn training_labels_follow_the_paper() {
        assert_eq!(Training::EarlyStop.label(), "standard, E.S.");
        assert_eq!(Training::Adversarial.label(), "robust");
    }
}
