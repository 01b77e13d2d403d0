//! The operator's one-shot commands, a file each: what `hudstream <command>` does beyond
//! parsing its arguments (`crate::cli`).

pub mod backfill;
pub mod bench;
pub mod bench_cluster;
pub mod bench_fresh;
pub mod bench_read;
pub mod bench_tests;
pub mod bench_tests_read;
pub mod bench_triage;
pub mod bench_writer;
pub mod classify;
pub mod dead_letters;
pub mod demo;
pub mod drci;
pub mod feed;
pub mod load;
pub mod reclassify;
pub mod reconcile;
pub mod replay;
pub mod setup;
pub mod status;
