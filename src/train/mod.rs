//! Training loops: shared run machinery, classifiers (supervised Baseline-H and downstream
//! heads) and encoders.
pub mod classifier;
pub mod encoder;
pub mod preset;
pub mod run;

pub use run::RunSettings;
