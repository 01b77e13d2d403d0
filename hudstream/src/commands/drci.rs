//! `hudstream drci --once [--dry-run]`: one Dr.CI pass, and what it posted (or, with
//! `--dry-run`, would post: GitHub is read, never written).

use hudstream_runtime::shutdown::{cancel_on_signal, CancellationToken};
use hudstream_runtime::Config;

pub async fn once(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let mut poster = crate::drci_poster(config, shutdown)?;
    let report = poster.pass(dry_run).await?;
    println!(
        "{} pull request(s) with recent activity: {} comment(s) {}, {} {}, {} unchanged, {} failed",
        report.pull_requests,
        report.created,
        if dry_run {
            "would be created"
        } else {
            "created"
        },
        report.edited,
        if dry_run { "would be edited" } else { "edited" },
        report.unchanged,
        report.failed
    );
    Ok(())
}
