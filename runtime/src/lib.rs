//! Shared plumbing for every hudstream stage.
//!
//! Stages hold the logic; this crate holds the delivery semantics, so they are written once:
//! configuration ([`config`]), the Kafka producer and the one consumer loop with its commit
//! policy ([`kafka`], driven by the actions of [`worker`]), the ClickHouse client and migration
//! runner ([`clickhouse`]), logs and metrics ([`telemetry`]), liveness and readiness ([`health`])
//! and shutdown ([`shutdown`]).

pub mod clickhouse;
pub mod config;
pub mod health;
pub mod kafka;
pub mod retry;
pub mod secret;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod worker;

pub use config::Config;
pub use secret::Secret;
