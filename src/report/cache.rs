//! Results stored as JSON in a run folder and read back as their types: a step whose result is
//! there is not run again, which is how reproductions and comparisons resume.
use crate::atomic::write_json_atomic;
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// The result stored at `path`, if any.
pub fn read_result<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::invalid(
            "run_folder",
            format!(
                "{} is not a result of this version of wcmi ({e}); delete it to recompute",
                path.display()
            ),
        )
    })
}

/// Runs `step` unless `path` already holds its result; stores what it returns there.
pub fn cached<T: Serialize + DeserializeOwned>(
    path: &Path,
    label: &str,
    step: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if let Some(value) = read_result(path)? {
        eprintln!("{label}: done earlier ({})", path.display());
        return Ok(value);
    }
    eprintln!("{label}: running");
    let value = step()?;
    write_json_atomic(path, &value)?;
    Ok(value)
}

/// Checks that the folder `root`, whose settings are stored at `path`, holds nothing or a `what`
/// whose settings have the same `identity` (what must match for its results to be reused), and
/// records `config` there.
pub fn claim_folder<C: Serialize + DeserializeOwned + PartialEq>(
    path: &Path,
    root: &Path,
    config: &C,
    identity: impl Fn(&C) -> C,
    what: &str,
) -> Result<()> {
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let saved: Option<C> = serde_json::from_str(&text).ok();
        if saved.as_ref() == Some(config) {
            return Ok(());
        }
        if saved.as_ref().map(&identity) != Some(identity(config)) {
            let differences = match saved {
                Some(saved) => {
                    let json = |c: &C| serde_json::to_value(identity(c)).unwrap_or_default();
                    crate::train::run::differing_settings(&json(&saved), &json(config)).join(", ")
                }
                None => format!("its config.json is not a {what} of this version"),
            };
            return Err(Error::invalid(
                "run_folder",
                format!(
                    "{} holds a {what} with other settings ({differences}); choose another folder",
                    root.display(),
                ),
            ));
        }
    }
    write_json_atomic(path, config)
}
