//! Evaluation of trained models.
pub mod accuracy;
