//! wcmi: adversarially robust representation learning by worst-case mutual-information
//! maximisation (Zhu, Zhang, Evans, ICML 2020). See `shared/SPEC.md` for the method.
pub mod atomic;
pub mod attack;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod compare;
pub mod data;
pub mod error;
pub mod eval;
pub mod folder_lock;
pub mod mi;
pub mod model;
pub mod nn;
pub mod precision;
pub mod report;
pub mod reproduce;
pub mod runtime;
pub mod seed;
pub mod train;

pub use error::{Error, Result};
