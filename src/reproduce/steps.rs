//! The steps of a reproduction: each trains or measures one thing (an encoder, a classifier
//! with its evaluation, or a representation's vulnerability), writes its result in its own
//! folder, and draws its random numbers from the trial's seed alone. So a step gives the same
//! result whether it runs in sequence with the others or alone in another process, which is
//! what lets [`super::processes`] spread a trial over the cores (issue 16).
use super::folder::Measured;
use super::grid::{self, Cell, Representation, Scope};
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    Encoder(Representation),
    Cell(Cell),
    Vulnerability(Measured),
}

impl Step {
    /// Its name within a trial: `encoder-dim`, a cell's folder name
    /// (`worst-case-mlp-adversarial`), or `vulnerability-` and the representation's name.
    pub fn name(&self) -> String {
        match self {
            Step::Encoder(r) => format!("encoder-{}", r.name()),
            Step::Cell(cell) => cell.name(),
            Step::Vulnerability(measured) => format!("vulnerability-{}", measured.name()),
        }
    }

    /// The steps whose results this one reads, in the same trial: a label-free cell's encoder
    /// and the E.S. twin whose run gives its weights; a vulnerability's model.
    pub fn needs(&self, scope: Scope) -> Vec<Step> {
        match *self {
            Step::Encoder(_) => Vec::new(),
            Step::Cell(cell) => {
                let encoder = cell
                    .representation
                    .objective()
                    .map(|_| Step::Encoder(cell.representation));
                let twin = scope.trained_with(&cell).map(Step::Cell);
                encoder.into_iter().chain(twin).collect()
            }
            Step::Vulnerability(Measured::Encoder(r)) => vec![Step::Encoder(r)],
            Step::Vulnerability(Measured::Supervised(cell)) => vec![Step::Cell(cell)],
        }
    }
}

/// A step of one trial.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrialStep {
    pub trial: usize,
    pub step: Step,
}

impl TrialStep {
    /// `trial-T/<step>`, as `--step` takes it and as the trial's folder names it.
    pub fn name(&self) -> String {
        format!("trial-{}/{}", self.trial, self.step.name())
    }

    pub fn needs(&self, scope: Scope) -> Vec<TrialStep> {
        self.step
            .needs(scope)
            .into_iter()
            .map(|step| TrialStep {
                trial: self.trial,
                step,
            })
            .collect()
    }

    /// The step of `plan` named `name`, or an error listing the names there are.
    pub fn find(name: &str, plan: &[TrialStep]) -> Result<TrialStep> {
        plan.iter()
            .find(|s| s.name() == name)
            .copied()
            .ok_or_else(|| {
                let first = plan.first().map(TrialStep::name).unwrap_or_default();
                let last = plan.last().map(TrialStep::name).unwrap_or_default();
                Error::invalid(
                    "step",
                    format!(
                        "no step '{name}' in this reproduction; its {} steps run from {first} to \
                     {last}",
                        plan.len()
                    ),
                )
            })
    }
}

/// The representations that get a vulnerability estimate: both encoders', then the supervised
/// cells' 64-d layers.
pub fn measured() -> Vec<Measured> {
    [Representation::Dim, Representation::WorstCase]
        .map(Measured::Encoder)
        .into_iter()
        .chain(
            grid::cells()
                .into_iter()
                .filter(|c| c.representation == Representation::Supervised)
                .map(Measured::Supervised),
        )
        .collect()
}

/// The steps of one trial in the order one process runs them: the encoders (the worst-case
/// one, the longest step, first), then the paper's headline comparison (the scope's headline
/// cells and the encoders' vulnerability), so that an interrupted or partial run
/// (`--report-only`) has the most telling numbers; then, for the grid, everything else. Every
/// step comes after the steps it needs: an E.S. twin just before the standard cell it gives.
fn trial_steps(scope: Scope) -> Vec<Step> {
    let mut cells: Vec<Cell> = Vec::new();
    for cell in scope.cells() {
        for c in scope.trained_with(&cell).into_iter().chain([cell]) {
            if !cells.contains(&c) {
                cells.push(c);
            }
        }
    }
    let headline = grid::headline_cells();
    let headline_end = 1 + cells
        .iter()
        .rposition(|c| headline.contains(c))
        .expect("every scope has the headline cells");
    let mut representations = measured().into_iter();
    let mut steps = vec![
        Step::Encoder(Representation::WorstCase),
        Step::Encoder(Representation::Dim),
    ];
    steps.extend(cells[..headline_end].iter().copied().map(Step::Cell));
    steps.extend(representations.by_ref().take(2).map(Step::Vulnerability));
    if scope.is_grid() {
        steps.extend(cells[headline_end..].iter().copied().map(Step::Cell));
        steps.extend(representations.map(Step::Vulnerability));
    }
    steps
}

/// Every step of `trials` trials of `scope`, trial by trial.
pub fn plan(scope: Scope, trials: usize) -> Vec<TrialStep> {
    (0..trials)
        .flat_map(|trial| {
            trial_steps(scope)
                .into_iter()
                .map(move |step| TrialStep { trial, step })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_plan_runs_every_step_of_its_scope_once_after_what_it_needs() {
        for scope in [Scope::Grid, Scope::Headline] {
            let plan = plan(scope, 2);
            let names: HashSet<String> = plan.iter().map(TrialStep::name).collect();
            assert_eq!(names.len(), plan.len(), "{scope:?}");
            let cells: Vec<Cell> = plan
                .iter()
                .filter(|s| s.trial == 0)
                .filter_map(|s| match s.step {
                    Step::Cell(c) => Some(c),
                    _ => None,
                })
                .collect();
            assert_eq!(cells.len(), scope.cells().len());
            assert!(scope.cells().iter().all(|c| cells.contains(c)));
            let vulnerabilities = if scope.is_grid() { measured().len() } else { 2 };
            assert_eq!(plan.len(), 2 * (2 + cells.len() + vulnerabilities));
            for (i, step) in plan.iter().enumerate() {
                for need in step.needs(scope) {
                    let at = plan
                        .iter()
                        .position(|s| *s == need)
                        .expect("needs are planned");
                    assert!(at < i, "{} before {}", need.name(), step.name());
                }
            }
        }
        let headline: Vec<String> = plan(Scope::Headline, 1)
            .iter()
            .map(TrialStep::name)
            .collect();
        assert_eq!(
            headline,
            [
                "trial-0/encoder-worst-case",
                "trial-0/encoder-dim",
                "trial-0/worst-case-mlp-adversarial",
                "trial-0/dim-mlp-adversarial",
                "trial-0/dim-mlp-standard",
                "trial-0/vulnerability-dim",
                "trial-0/vulnerability-worst-case",
            ]
        );
    }

    #[test]
    fn a_standard_head_needs_its_encoder_and_its_e_s_twin() {
        let grid = plan(Scope::Grid, 1);
        let standard = TrialStep::find("trial-0/dim-linear-standard", &grid).unwrap();
        let needs: Vec<String> = standard
            .needs(Scope::Grid)
            .iter()
            .map(TrialStep::name)
            .collect();
        assert_eq!(
            needs,
            ["trial-0/encoder-dim", "trial-0/dim-linear-standard-es"]
        );
        let headline = plan(Scope::Headline, 1);
        let alone = TrialStep::find("trial-0/dim-mlp-standard", &headline).unwrap();
        let encoder = TrialStep {
            trial: 0,
            step: Step::Encoder(Representation::Dim),
        };
        assert_eq!(alone.needs(Scope::Headline), [encoder]);
        let err = TrialStep::find("trial-3/encoder-dim", &grid)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("step: no step 'trial-3/encoder-dim'")
                && err.contains("from trial-0/encoder-worst-case"),
            "{err}"
        );
    }
}
