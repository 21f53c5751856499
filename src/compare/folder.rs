//! The layout of a comparison's folder, named in this one place:
//!
//! ```text
//! OUT/config.json, results.json, results.md, report.html, plots/   (a ReportFolder)
//! OUT/models/LABEL/evaluation.json, vulnerability.json             one model's measurements
//! ```
use crate::report::folder::ReportFolder;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct ComparisonFolder {
    top: ReportFolder,
}

/// A comparison folder is a report folder whose results are [`super::Comparison`].
impl std::ops::Deref for ComparisonFolder {
    type Target = ReportFolder;

    fn deref(&self) -> &ReportFolder {
        &self.top
    }
}

impl ComparisonFolder {
    pub fn new(root: &Path) -> Self {
        Self {
            top: ReportFolder::new(root),
        }
    }

    /// The measurements of the model labelled `label`.
    pub fn model(&self, label: &str) -> ModelFolder {
        ModelFolder {
            dir: self.root().join("models").join(label),
        }
    }
}

pub struct ModelFolder {
    dir: PathBuf,
}

impl ModelFolder {
    /// Its [`super::ModelEvaluation`].
    pub fn evaluation(&self) -> PathBuf {
        self.dir.join("evaluation.json")
    }

    /// Its [`super::LayerVulnerability`].
    pub fn vulnerability(&self) -> PathBuf {
        self.dir.join("vulnerability.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_names_each_file_once() {
        let folder = ComparisonFolder::new(Path::new("out"));
        assert_eq!(folder.report(), Path::new("out/report.html"));
        assert_eq!(
            folder.model("dim").vulnerability(),
            Path::new("out/models/dim/vulnerability.json")
        );
    }
}
