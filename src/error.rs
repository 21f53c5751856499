//! The library's error type: every failure names the file, flag or tensor it concerns.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file is missing, truncated, corrupt or inconsistent.
    #[error("{}: {problem}", path.display())]
    Data { path: PathBuf, problem: String },
    /// A checkpoint does not exist or does not fit the model it is loaded into.
    #[error("checkpoint {}: {problem}", path.display())]
    Checkpoint { path: PathBuf, problem: String },
    /// A model file (TorchScript) cannot be loaded or does not follow wcmi's convention.
    #[error("model {}: {problem}", path.display())]
    Model { path: PathBuf, problem: String },
    /// A setting is out of its valid range or does not fit the rest; `setting` names it as
    /// the configuration does (`batch_size`, `eps`, `run_folder`), which the CLI maps to its flag.
    #[error("{setting}: {problem}")]
    InvalidSetting { setting: String, problem: String },
    /// Training produced a non-finite loss.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// An operating-system error, shown once: it is part of the message, not a separate
    /// `source` (which anyhow's alternate format would print again).
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn data(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Data {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    pub fn checkpoint(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    pub fn model(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Model {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    pub fn invalid(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::InvalidSetting {
            setting: setting.into(),
            problem: problem.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause: source,
        }
    }
}

/// Rejects settings that must be strictly positive (epochs, batch sizes, step sizes).
pub fn ensure_positive<T: PartialOrd + Default + std::fmt::Display>(
    setting: &str,
    value: T,
) -> Result<()> {
    if value > T::default() {
        Ok(())
    } else {
        Err(Error::invalid(
            setting,
            format!("must be positive, got {value}"),
        ))
    }
}

/// Rejects rates and sizes that must be positive finite numbers (learning rates, step sizes).
pub fn ensure_positive_number(setting: &str, value: f64) -> Result<()> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            setting,
            format!("must be a positive number, got {value}"),
        ))
    }
}
