//! Black-box tests: the real application over HTTP, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod at_rest;
mod audit;
mod backup;
mod cli;
mod config_check;
mod console;
mod console_e2e;
mod device_keys;
mod error_codes;
mod evidence;
mod idempotency;
mod lifecycle;
mod mail;
mod openapi;
mod operations;
mod people;
mod pg_cluster;
mod pg_tls;
mod quality;
mod sequencing;
mod service;
mod shutdown;
mod smtp_sink;
mod tls;
mod tokens;
mod verification;
mod witness;
