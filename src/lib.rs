//! crossprov: cross-province real-name registration work orders.
//!
//! Layers, outermost first: `cli` and `http` (thin) → `service` (one function per action,
//! the only place a write transaction opens) → `domain` (pure rules) and `audit`/`signing`
//! (pure chain and JWS code) → `storage` (all SQL).
//!
//! Modules are public only where a binary or the black-box tests need them (the CLI, settings,
//! start-up, the service entry points, the domain's types, the audit chain's pure code and
//! storage's offline door); the rest is crate-private, so the dead-code lint sees what nothing
//! uses.

pub mod audit;
pub mod cli;
pub mod config;
pub(crate) mod crypto;
pub mod domain;
pub(crate) mod http;
pub mod notify;
pub(crate) mod offline;
pub(crate) mod scheduler;
pub mod service;
pub(crate) mod signing;
pub mod startup;
pub mod storage;
pub(crate) mod telemetry;
pub(crate) mod terminal;
pub(crate) mod tls;
pub mod witness;

/// The contract's error codes, for the black-box tests that walk them.
pub use http::problem::ErrorCode;
