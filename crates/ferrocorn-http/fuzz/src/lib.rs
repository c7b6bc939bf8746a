//! Fuzz properties for ferrocorn-http; see `checks.rs`.
pub mod checks;
