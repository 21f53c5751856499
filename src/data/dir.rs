//! Where datasets live: `--data-dir`, else `$WCMI_DATA`, else `./data`, else `../shared/data`.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub const ENV_VAR: &str = "WCMI_DATA";
const FALLBACKS: [&str; 2] = ["data", "../shared/data"];

/// Resolves the data directory. An explicitly named directory must exist.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return existing(dir, "data_dir");
    }
    if let Some(dir) = std::env::var_os(ENV_VAR) {
        return existing(Path::new(&dir), ENV_VAR);
    }
    FALLBACKS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
        .ok_or_else(|| {
            Error::invalid(
                "data_dir",
                "no data directory found (looked in ./data and ../shared/data); name one or set \
                 WCMI_DATA",
            )
        })
}

/// Where downloads of the official files go: the named directory (created if needed), else `./data`.
pub fn for_download(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(ENV_VAR).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(FALLBACKS[0]))
}

fn existing(dir: &Path, flag: &str) -> Result<PathBuf> {
    if dir.is_dir() {
        Ok(dir.to_path_buf())
    } else {
        Err(Error::invalid(
            flag,
            format!("data directory {} does not exist", dir.display()),
        ))
    }
}
