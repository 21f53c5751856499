//! The files at the top of every folder that ends in a report (a reproduction, a comparison),
//! named in this one place:
//!
//! ```text
//! OUT/config.json    the settings it was started with (a rerun must match them)
//! OUT/results.json   everything measured, one typed record
//! OUT/results.md     the tables in Markdown
//! OUT/report.html    the self-contained report
//! OUT/plots/NAME.png, NAME.svg
//! ```
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct ReportFolder {
    root: PathBuf,
}

impl ReportFolder {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }

    pub fn results(&self) -> PathBuf {
        self.root.join("results.json")
    }

    pub fn markdown(&self) -> PathBuf {
        self.root.join("results.md")
    }

    pub fn report(&self) -> PathBuf {
        self.root.join("report.html")
    }

    /// A plot's path without its extension (written as PNG and SVG).
    pub fn plot(&self, name: &str) -> PathBuf {
        self.root.join("plots").join(name)
    }
}
