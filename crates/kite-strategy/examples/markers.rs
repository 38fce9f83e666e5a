//! Lists the work markers the strategy loop would see in every file git tracks in a repository
//! (not only the recently changed ones, as the loop does), and those set aside with the reason:
//! the check behind docs/BENCHMARKS.md's marker precision.
//!
//! `cargo run --release -p kite-sched --example markers -- REPO [--json]`

use std::path::Path;
use std::process::Command;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(repo) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: markers REPO [--json]");
        std::process::exit(2);
    };
    let json = args.iter().any(|a| a == "--json");
    let out = Command::new("git").arg("-C").arg(repo).args(["ls-files", "-z"]).output().expect("git ls-files");
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout).split('\0').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let (mut queued, mut gated, mut skipped_files) = (0, 0, 0);
    for f in &files {
        if kite_strategy::markers::skipped_path(f).is_some() {
            skipped_files += 1;
            continue;
        }
        let path = Path::new(repo).join(f);
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.len() > 1 << 20 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for m in kite_strategy::markers::scan(f, &text) {
            if json {
                println!("{}", serde_json::json!({"file": f, "line": m.line, "kind": m.kind, "text": m.text, "gated": m.gated}));
            } else {
                match &m.gated {
                    Some(why) => println!("SET ASIDE {f}:{}: {} ({why})", m.line, m.text),
                    None => println!("QUEUE {f}:{}: {}", m.line, m.text),
                }
            }
            if m.gated.is_some() {
                gated += 1;
            } else {
                queued += 1;
            }
        }
    }
    eprintln!("{} files, {skipped_files} skipped (fixtures, vendored, generated); {queued} markers would be queued, {gated} set aside", files.len());
}
