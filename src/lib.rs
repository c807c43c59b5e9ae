//! crossprov: cross-province real-name registration work orders.
//!
//! Layers, outermost first: `cli` and `http` (thin) → `service` (one function per action,
//! the only place a write transaction opens) → `domain` (pure rules) and `audit`/`signing`
//! (pure chain and JWS code) → `storage` (all SQL).

pub mod audit;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod service;
pub mod signing;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod terminal;

/// The contract's error codes, where the tests (and any client of the library) name them.
pub use domain::ErrorCode;
