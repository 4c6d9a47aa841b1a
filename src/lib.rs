//! `hotline`: a 7×24 psychological-assistance hotline routing and logging server.
//!
//! A tour, from the edge inwards:
//! - [`gateway`]: HTTP and WebSocket endpoints for callers and staff; one task per connection;
//!   the router task that owns the engine and makes its decisions durable before anyone hears of them.
//! - [`routing`]: the pure routing engine (no IO, time is an input).
//! - [`store`]: the storage trait with SQLite (embedded default) and PostgreSQL implementations.
//! - [`auth`] and [`admin`]: accounts, roles, sessions, and the administrators' API.
//! - [`config`], [`metrics`], [`proto`]: settings, Prometheus, and the generated protocol contract.
//! - [`logs`]: the JSON log lines and the HTTP request span, which never carry personal data or keys.
//!
//! `main.rs` only parses the command line and calls [`app::run`]; tests call the same function.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod logs;
pub mod metrics;
pub mod notes;
pub mod paging;
pub mod proto;
pub mod quality;
pub mod queues;
pub mod routing;
pub mod store;

pub use app::{run, run_with_hooks};
