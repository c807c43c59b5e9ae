//! Black-box tests: the real application over HTTP, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod at_rest;
mod audit;
mod cli;
mod error_codes;
mod evidence;
mod lifecycle;
mod mail;
mod people;
mod service;
mod smtp_sink;
mod tls;
mod tokens;
mod verification;
