//! `kite-pg-cluster -- COMMAND ARGS...`: runs COMMAND with a throwaway PostgreSQL cluster up
//! (see `kite_store_pg::cluster`), its URL in `KITE_TEST_PG` (the `postgres` database of the
//! superuser `kite` on 127.0.0.1), and removes the cluster afterwards, whatever COMMAND did.
//! `make test` runs the coordinator's end-to-end suite through it a second time, on PostgreSQL.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).skip_while(|a| a == "--").collect();
    let Some((prog, rest)) = args.split_first() else {
        eprintln!("usage: kite-pg-cluster -- COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let cluster = match kite_store_pg::cluster::TempCluster::start() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kite-pg-cluster: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("kite-pg-cluster: PostgreSQL on 127.0.0.1:{} (fsync {}, synchronous_commit {})", cluster.port(), cluster.setting("fsync").unwrap_or_default(), cluster.setting("synchronous_commit").unwrap_or_default());
    let status = Command::new(prog).args(rest).env("KITE_TEST_PG", cluster.url("postgres")).status();
    drop(cluster);
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("kite-pg-cluster: cannot run {prog}: {e}");
            ExitCode::from(2)
        }
    }
}
