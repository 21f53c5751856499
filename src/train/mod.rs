//! Training loops: the optimiser, shared run machinery, classifiers (supervised Baseline-H and
//! downstream heads).
pub mod adam;
pub mod classifier;
pub mod encoder;
pub mod preset;
pub mod run;

pub use adam::{Adam, AdamConfig};
pub use run::RunSettings;
