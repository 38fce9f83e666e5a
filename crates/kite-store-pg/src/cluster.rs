//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory, `pg_ctl` on a loopback
//! port, stopped and removed on drop. The tests and benchmarks of the PostgreSQL backend run
//! against one of these, never a mock. PostgreSQL refuses to run as root, so as root the cluster
//! runs as the `postgres` user that Debian's package creates.
//!
//! It is in the library (not a test module) because three places use it: this crate's tests, the
//! end-to-end suite and `make bench`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a cluster did not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("PostgreSQL's server programs (initdb, pg_ctl) were not found: install Debian's `postgresql` package, or set KITE_PG_BIN to their directory")]
    NotInstalled,
    #[error("{what}: {detail}")]
    Failed { what: String, detail: String },
}

fn failed(what: impl Into<String>, detail: impl ToString) -> ClusterError {
    ClusterError::Failed { what: what.into(), detail: detail.to_string() }
}

/// The directory holding `initdb` and `pg_ctl`: `KITE_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else whatever `PATH` has.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("KITE_PG_BIN") {
        return Some(PathBuf::from(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p): &(u32, PathBuf)| p.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, p)) = versions.pop() {
        return Some(p);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(PathBuf::from).find(|d| d.join("initdb").exists())
}

/// A running cluster in a temporary directory.
pub struct TempCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// The user the server runs as, when this process is root.
    run_as: Option<String>,
    _dir: tempfile::TempDir,
}

impl TempCluster {
    /// Initialises and starts a cluster with `fsync` and `synchronous_commit` on (PostgreSQL's
    /// defaults: what a team's server would run), listening on 127.0.0.1 only, with the
    /// superuser `kite` trusted on loopback.
    pub fn start() -> Result<TempCluster, ClusterError> {
        let bin = bin_dir().ok_or(ClusterError::NotInstalled)?;
        let run_as = rustix::process::geteuid().is_root().then(|| "postgres".to_string());
        // The server's user must reach the directory: under /tmp, not a TMPDIR that may be
        // root's own (mode 0700).
        let builder = tempfile::Builder::new().prefix("kite-pg").to_owned();
        let dir = match run_as {
            Some(_) => builder.tempdir_in("/tmp"),
            None => builder.tempdir(),
        }
        .map_err(|e| failed("cannot make a directory for the cluster", e))?;
        if let Some(user) = &run_as {
            let st = Command::new("chown").arg("-R").arg(format!("{user}:")).arg(dir.path()).status().map_err(|e| failed("chown", e))?;
            if !st.success() {
                return Err(failed("cannot give the cluster's directory to the postgres user", "is Debian's postgresql package installed?"));
            }
        }
        let data = dir.path().join("data");
        let port = free_port()?;
        let c = TempCluster { bin, data, port, run_as, _dir: dir };
        c.run("initdb", &["-D", c.data.to_str().unwrap_or_default(), "-U", "kite", "-A", "trust", "-E", "UTF8", "--no-sync"])?;
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=200", c.port, c.socket_dir().display());
        let log = c.data.join("server.log");
        c.run("pg_ctl", &["-D", c.data.to_str().unwrap_or_default(), "-o", &opts, "-l", log.to_str().unwrap_or_default(), "-w", "-t", "60", "start"])?;
        tracing::info!(port = c.port, "started a PostgreSQL cluster");
        Ok(c)
    }

    fn socket_dir(&self) -> &Path {
        self.data.parent().unwrap_or(&self.data)
    }

    fn run(&self, prog: &str, args: &[&str]) -> Result<(), ClusterError> {
        let exe = self.bin.join(prog);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        // The server's working directory must be readable by its user.
        let out = cmd.args(args).current_dir("/").output().map_err(|e| failed(format!("cannot run {}", exe.display()), e))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default();
            return Err(failed(format!("{prog} failed"), format!("{}{}{log}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))));
        }
        Ok(())
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://kite@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        let c = crate::connect(&self.url("postgres")).map_err(|e| failed("cannot connect to the cluster", e))?;
        c.batch(&format!("CREATE DATABASE \"{}\"", name.replace('"', ""))).map_err(|e| failed(format!("cannot create database {name}"), e))?;
        Ok(self.url(name))
    }

    /// The server's `SHOW name`.
    pub fn setting(&self, name: &str) -> Result<String, ClusterError> {
        let c = crate::connect(&self.url("postgres")).map_err(|e| failed("cannot connect to the cluster", e))?;
        let row = c.query_one(&format!("SHOW {name}"), &[]).map_err(|e| failed(format!("SHOW {name}"), e))?;
        Ok(row.get(0))
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().to_string();
        if let Err(e) = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]) {
            tracing::warn!("cannot stop the PostgreSQL cluster: {e}");
        }
    }
}

/// A port nothing listens on now (the kernel's choice; released before the server binds it).
fn free_port() -> Result<u16, ClusterError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| failed("cannot find a free port", e))?;
    Ok(l.local_addr().map_err(|e| failed("cannot find a free port", e))?.port())
}
