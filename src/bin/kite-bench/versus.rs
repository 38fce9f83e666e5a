//! `kite-bench --versus-only OTHER_KITE`: this build's coordinator against another build's (the
//! commit before a refactor, built beside this one), in the same session. Rounds interleave the
//! two (this, other, this, other, ...) on fresh projects, so a noisy moment of a shared VM hits one
//! round, not one side; the ratio is taken within a round and the median round is the headline.

use std::path::Path;

use anyhow::Result;

use super::{lock_handoff, pct, task_ops_measured, Daemon, Spread};

/// Lock hand-offs per side and round: enough that the p99 is not three samples.
const HANDOFFS: usize = 4_000;

struct Side {
    ops: f64,
    handoff_p50: f64,
    handoff_p99: f64,
}

async fn measure(dir: &Path, name: &str, daemon: Option<&Path>) -> Result<Side> {
    let root = dir.join(name);
    std::fs::create_dir_all(&root)?;
    let d = match daemon {
        Some(exe) => Daemon::start_with(exe, &root, "normal")?,
        None => Daemon::start(&root, "normal")?,
    };
    let (ops, _) = task_ops_measured(&d, 32, 2.0).await?;
    let handoff = lock_handoff(&d.socket, "hot", 64, HANDOFFS).await?;
    Ok(Side { ops, handoff_p50: pct(&handoff, 0.5), handoff_p99: pct(&handoff, 0.99) })
}

pub(crate) async fn versus_bench(dir: &Path, other: &Path, rounds: usize) -> Result<String> {
    anyhow::ensure!(other.is_file(), "no kite binary at {}", other.display());
    let (mut ops, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new());
    let mut rows = String::new();
    for round in 0..rounds {
        eprintln!("[versus] round {}/{rounds}: this build, then {}", round + 1, other.display());
        let this = measure(dir, &format!("this-{round}"), None).await?;
        let that = measure(dir, &format!("other-{round}"), Some(other)).await?;
        eprintln!(
            "      {:.0} vs {:.0} task ops/s; hand-off p50 {:.0} vs {:.0} µs, p99 {:.0} vs {:.0} µs",
            this.ops, that.ops, this.handoff_p50, that.handoff_p50, this.handoff_p99, that.handoff_p99
        );
        rows.push_str(&format!(
            "| {} | {:.0} / {:.0} | {:.2}x | {:.0} / {:.0} µs | {:.2}x | {:.0} / {:.0} µs | {:.2}x |\n",
            round + 1,
            this.ops,
            that.ops,
            this.ops / that.ops,
            this.handoff_p50,
            that.handoff_p50,
            this.handoff_p50 / that.handoff_p50,
            this.handoff_p99,
            that.handoff_p99,
            this.handoff_p99 / that.handoff_p99
        ));
        ops.push(this.ops / that.ops);
        p50.push(this.handoff_p50 / that.handoff_p50);
        p99.push(this.handoff_p99 / that.handoff_p99);
    }
    let (ops, p50, p99) = (Spread::of(ops), Spread::of(p50), Spread::of(p99));
    let mut md = String::from("## Coordinator against an earlier build\n\n");
    md.push_str(&format!(
        "`target/release/kite-bench --versus-only OTHER/target/release/kite`: {rounds} interleaved rounds, each \
         starting this build's daemon and then the other's on a fresh project (synchronous=normal, memory \
         component on), 32 clients looping create → start → done for 2 s, then {HANDOFFS} lock hand-offs among \
         64 sessions. Median ratio (this / other) over the rounds: task ops/s {}x, hand-off p50 {}x, hand-off \
         p99 {}x (lowest and highest in brackets).\n\n",
        ops.show(2),
        p50.show(2),
        p99.show(2)
    ));
    md.push_str("| round | task ops/s, this / other | ratio | hand-off p50, this / other | ratio | hand-off p99, this / other | ratio |\n");
    md.push_str("|---|---|---|---|---|---|---|\n");
    md.push_str(&rows);
    Ok(md)
}
