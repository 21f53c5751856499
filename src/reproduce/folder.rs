//! The layout of a reproduction's folder, named in this one place:
//!
//! ```text
//! OUT/config.json, results.json, results.md, report.html, plots/
//! OUT/trial-T/encoder-dim/, encoder-worst-case/      an encoder's training run
//! OUT/trial-T/<cell>/                                a classifier's run, its result.json
//! OUT/trial-T/<model>/vulnerability.json             beside the representation's weights
//! OUT/logs/trial-T/<step>.log                        a step's output when run in its own process
//! ```
//!
//! Each run folder holds the files of [`RunFiles`] (weights, state, log).
use super::grid::{Cell, Representation};
use super::steps::TrialStep;
use crate::report::folder::ReportFolder;
use crate::train::run::RunFiles;
use std::path::{Path, PathBuf};

/// A representation the reproduction measures: an encoder's, or a supervised cell's 64-d layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measured {
    Encoder(Representation),
    Supervised(Cell),
}

impl Measured {
    /// Its name in results and tables (`dim`, `worst-case`, or the cell's name), which is
    /// also its folder's name without the `encoder-` of an encoder.
    pub fn name(self) -> String {
        match self {
            Measured::Encoder(r) => r.name().to_string(),
            Measured::Supervised(cell) => cell.name(),
        }
    }

    pub fn representation(self) -> Representation {
        match self {
            Measured::Encoder(r) => r,
            Measured::Supervised(cell) => cell.representation,
        }
    }
}

/// The root of one reproduction: the files of a [`ReportFolder`] and one folder per trial.
#[derive(Clone, Debug)]
pub struct ReproductionFolder {
    top: ReportFolder,
}

/// A reproduction folder is a report folder whose results are [`super::Results`].
impl std::ops::Deref for ReproductionFolder {
    type Target = ReportFolder;

    fn deref(&self) -> &ReportFolder {
        &self.top
    }
}

impl ReproductionFolder {
    pub fn new(root: &Path) -> Self {
        Self {
            top: ReportFolder::new(root),
        }
    }

    /// The output of a step run in its own process.
    pub fn step_log(&self, step: &TrialStep) -> PathBuf {
        self.root()
            .join("logs")
            .join(format!("{}.log", step.name()))
    }

    pub fn trial(&self, trial: usize) -> TrialFolder {
        TrialFolder {
            dir: self.root().join(format!("trial-{trial}")),
        }
    }
}

/// The folders of one trial.
#[derive(Clone, Debug)]
pub struct TrialFolder {
    dir: PathBuf,
}

impl TrialFolder {
    /// The training run of a label-free representation's encoder.
    pub fn encoder(&self, representation: Representation) -> PathBuf {
        self.dir.join(format!("encoder-{}", representation.name()))
    }

    /// A classifier's training run.
    pub fn cell(&self, cell: &Cell) -> PathBuf {
        self.dir.join(cell.name())
    }

    /// A classifier's evaluation ([`super::CellResult`]).
    pub fn cell_result(&self, cell: &Cell) -> PathBuf {
        self.cell(cell).join("result.json")
    }

    /// The run whose weights hold a measured representation.
    pub fn measured(&self, measured: Measured) -> RunFiles {
        RunFiles::new(&match measured {
            Measured::Encoder(r) => self.encoder(r),
            Measured::Supervised(cell) => self.cell(&cell),
        })
    }

    /// A representation's vulnerability ([`super::RepresentationResult`]), beside its weights.
    pub fn vulnerability(&self, measured: Measured) -> PathBuf {
        self.measured(measured)
            .best
            .with_file_name("vulnerability.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::HeadKind;
    use crate::reproduce::grid;
    use crate::train::classifier::Training;

    /// The names are those of the README's run folders, which must stay readable.
    #[test]
    fn the_layout_is_that_of_existing_run_folders() {
        let folder = ReproductionFolder::new(Path::new("out"));
        let trial = folder.trial(2);
        let cell = grid::cells()
            .into_iter()
            .find(|c| {
                c.representation == Representation::WorstCase
                    && c.head == HeadKind::Mlp
                    && c.training == Training::Adversarial
            })
            .unwrap();
        assert_eq!(folder.config(), Path::new("out/config.json"));
        assert_eq!(
            trial.cell_result(&cell),
            Path::new("out/trial-2/worst-case-mlp-adversarial/result.json")
        );
        let encoder = Measured::Encoder(Representation::Dim);
        assert_eq!(
            trial.measured(encoder).best,
            Path::new("out/trial-2/encoder-dim/model.safetensors")
        );
        assert_eq!(
            trial.vulnerability(encoder),
            Path::new("out/trial-2/encoder-dim/vulnerability.json")
        );
        assert_eq!(
            trial.vulnerability(Measured::Supervised(cell)),
            Path::new("out/trial-2/worst-case-mlp-adversarial/vulnerability.json")
        );
    }
}
