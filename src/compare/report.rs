//! What a comparison shows: one row per model (natural, PGD and suite accuracy, I, I_wc, RV,
//! the Theorem 3.4 bound), the masking flags, the paper's Fig. 1 (RV against the gap between
//! natural and robust accuracy) and Fig. 2 (I_wc against robust accuracy under the bound), with
//! the suite's accuracy as the robust accuracy, and one self-contained HTML page.
use super::folder::ComparisonFolder;
use super::{Comparison, ModelResult};
use crate::atomic::write_atomic;
use crate::error::Result;
use crate::mi::theory::bound_curve;
use crate::report::plot::{self, Chart, Mark, Series};
use crate::report::table;

fn suite_name(comparison: &Comparison) -> &'static str {
    match comparison.config.suite {
        crate::attack::classifier::Suite::Autoattack => "AutoAttack",
        crate::attack::classifier::Suite::Strong => "strong suite",
    }
}

fn nats(value: f64, ci95: f64) -> String {
    format!("{value:.3} ± {ci95:.3}")
}

/// The comparison table: one row per model.
pub fn table(comparison: &Comparison) -> (Vec<String>, Vec<Vec<String>>) {
    let pgd = format!("PGD-{} %", comparison.config.attack.steps);
    let header = [
        "model",
        "file holds",
        "layer (width)",
        "natural %",
        &pgd,
        &format!("{} %", suite_name(comparison)),
        "I (nats)",
        "I_wc (nats)",
        "RV (nats)",
        "bound on robust accuracy %",
    ]
    .map(String::from)
    .to_vec();
    let rows = comparison
        .models
        .iter()
        .map(|m| {
            let (e, v) = (&m.evaluation, &m.vulnerability);
            vec![
                m.model.label.clone(),
                e.kind.clone(),
                format!("{} ({})", v.layer, v.width),
                format!("{:.2}", 100.0 * e.natural_accuracy),
                format!("{:.2}", 100.0 * e.pgd_accuracy),
                format!("{:.2}", 100.0 * e.suite_accuracy),
                nats(v.report.normal.mean, v.report.normal.ci95),
                nats(v.report.worst_case.mean, v.report.worst_case.ci95),
                nats(v.report.vulnerability, v.report.vulnerability_ci95),
                v.report
                    .robust_accuracy_bound
                    .map_or("– (not in nats)".to_string(), |b| {
                        format!("{:.2}", 100.0 * b)
                    }),
            ]
        })
        .collect();
    (header, rows)
}

/// What the numbers are, in one paragraph.
fn caption(comparison: &Comparison) -> String {
    let c = &comparison.config;
    let examples = comparison
        .models
        .first()
        .map_or(0, |m| m.evaluation.examples);
    format!(
        "{dataset}: accuracy on the first {examples} test images, under the paper's PGD \
         ({norm:?} ε = {eps}, {steps} steps of {step}, from the image) and after every attack of \
         {suite} (per image, the worst case). I and I_wc are {bound} estimates of the \
         representation's MI with the image, normal and under the same threat, with a fresh \
         critic per model; RV = I − I_wc with its 95 % interval; the bound is Theorem 3.4's on \
         any classifier built on the layer.",
        dataset = c.dataset,
        norm = c.attack.norm,
        eps = c.attack.eps,
        steps = c.attack.steps,
        step = c.attack.step_size,
        suite = suite_name(comparison),
        bound = table::flag_value(&c.critic.bound),
    )
}

/// Each model's flags, as "label: flag": the suite's gradient-masking flags, and a normal MI
/// estimate saturated at its bound's cap (its RV and bound cannot be read).
fn flags(comparison: &Comparison) -> Vec<String> {
    comparison
        .models
        .iter()
        .flat_map(|m| {
            let saturation = m.vulnerability.report.normal.saturation();
            m.evaluation
                .masking_flags
                .iter()
                .cloned()
                .chain(saturation)
                .map(move |f| format!("{}: {f}", m.model.label))
        })
        .collect()
}

const NO_FLAG: &str = "Checks (gradient masking, saturated MI estimates): no flag raised.";
const FLAGS: &str = "Flags (gradient masking, saturated MI estimates):";

pub fn markdown(comparison: &Comparison) -> String {
    let (header, rows) = table(comparison);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = table::markdown(&header, &rows);
    out += &format!("\n{}\n", caption(comparison));
    let flags = flags(comparison);
    if flags.is_empty() {
        out += &format!("\n{NO_FLAG}\n");
    } else {
        out += &format!("\n{FLAGS}\n");
        for flag in flags {
            out += &format!("- {flag}\n");
        }
    }
    out
}

/// One series per model, one point each, so that the legend names the models.
fn model_points(
    comparison: &Comparison,
    point: impl Fn(&ModelResult) -> (f64, f64),
) -> Vec<Series> {
    comparison
        .models
        .iter()
        .map(|m| Series {
            label: m.model.label.clone(),
            points: vec![point(m)],
            mark: Mark::Points,
        })
        .collect()
}

/// Fig. 1: representation vulnerability against the natural − robust accuracy gap.
fn vulnerability_gap_chart(comparison: &Comparison) -> Chart {
    Chart {
        title: format!(
            "{}: vulnerability and robustness gap",
            comparison.config.dataset
        ),
        x_label: "representation vulnerability RV (nats)".into(),
        y_label: format!(
            "natural − {} accuracy (percentage points)",
            suite_name(comparison)
        ),
        series: model_points(comparison, |m| {
            (
                m.vulnerability.report.vulnerability,
                100.0 * (m.evaluation.natural_accuracy - m.evaluation.suite_accuracy),
            )
        }),
    }
}

/// Fig. 2: worst-case MI against robust accuracy, under the Theorem 3.4 bound.
fn bound_chart(comparison: &Comparison) -> Chart {
    let reports = comparison.models.iter().map(|m| &m.vulnerability.report);
    let top = reports
        .clone()
        .map(|r| r.normal.mean.max(r.worst_case.mean))
        .fold(1.0f64, f64::max);
    let bottom = reports.map(|r| r.worst_case.mean).fold(0.0f64, f64::min);
    let classes = comparison
        .models
        .first()
        .map_or(10, |m| m.vulnerability.report.num_classes) as usize;
    let mut series = model_points(comparison, |m| {
        (
            m.vulnerability.report.worst_case.mean,
            100.0 * m.evaluation.suite_accuracy,
        )
    });
    series.push(Series {
        label: "Theorem 3.4 bound".into(),
        points: bound_curve(bottom, top, classes)
            .into_iter()
            .map(|(mi, accuracy)| (mi, 100.0 * accuracy))
            .collect(),
        mark: Mark::Dashed,
    });
    Chart {
        title: format!(
            "{}: worst-case MI and robust accuracy",
            comparison.config.dataset
        ),
        x_label: "worst-case MI I_wc of the layer (nats)".into(),
        y_label: format!("{} accuracy (%)", suite_name(comparison)),
        series,
    }
}

fn html(comparison: &Comparison, charts: &[(&str, Chart)]) -> Result<String> {
    let (header, rows) = table(comparison);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let suite_rows: Vec<Vec<String>> = comparison
        .models
        .iter()
        .flat_map(|m| {
            m.evaluation
                .suite_attacks
                .iter()
                .map(move |(attack, accuracy)| {
                    vec![
                        m.model.label.clone(),
                        attack.clone(),
                        format!("{:.2}", 100.0 * accuracy),
                    ]
                })
        })
        .collect();
    let file_rows: Vec<Vec<String>> = comparison
        .models
        .iter()
        .map(|m| {
            vec![
                m.model.label.clone(),
                m.model.file.display().to_string(),
                format!("{:.0}", m.evaluation.seconds),
                format!("{:.0}", m.vulnerability.seconds),
            ]
        })
        .collect();
    let flags = flags(comparison);
    let flags = if flags.is_empty() {
        format!("<p>{NO_FLAG}</p>\n")
    } else {
        let items: String = flags
            .iter()
            .map(|f| format!("<li>{}</li>", table::escape_html(f)))
            .collect();
        format!("<p>{FLAGS}</p><ul>{items}</ul>\n")
    };
    let mut plots = String::new();
    for (name, chart) in charts {
        plots += &plot::figure(chart, name)?;
    }
    let settings = serde_json::to_string_pretty(&comparison.config).unwrap_or_default();
    let body = format!(
        "<h1>wcmi comparison: {dataset}</h1>\n{table}<p>{caption}</p>\n{flags}\
         <h2>Plots</h2>\n{plots}\
         <h2>The suite, attack by attack</h2>\n<p>Accuracy % after each attack and those above \
         it.</p>\n{suite}\
         <h2>Models and timings</h2>\n{files}\
         <h2>Settings</h2>\n<pre>{settings}</pre>\n<p>wcmi {version}</p>\n",
        dataset = table::escape_html(&comparison.config.dataset.to_string()),
        table = table::html(&header, &rows),
        caption = table::escape_html(&caption(comparison)),
        suite = table::html(&["model", "attack", "accuracy %"], &suite_rows),
        files = table::html(
            &["model", "file", "evaluation s", "vulnerability s"],
            &file_rows
        ),
        settings = table::escape_html(&settings),
        version = comparison.wcmi_version,
    );
    Ok(table::html_page(
        &format!("wcmi comparison: {}", comparison.config.dataset),
        &body,
    ))
}

/// Writes the Markdown table, both figures (PNG and SVG) and the HTML report into `folder`.
pub fn write(comparison: &Comparison, folder: &ComparisonFolder) -> Result<()> {
    write_atomic(&folder.markdown(), markdown(comparison).as_bytes())?;
    let charts = [
        (
            "fig1-vulnerability-gap",
            vulnerability_gap_chart(comparison),
        ),
        ("fig2-mi-bound", bound_chart(comparison)),
    ];
    for (name, chart) in &charts {
        plot::write(chart, &folder.plot(name))?;
    }
    write_atomic(&folder.report(), html(comparison, &charts)?.as_bytes())
}
