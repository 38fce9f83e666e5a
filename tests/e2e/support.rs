//! Starting daemons on temporary homes and driving them through the CLI or the client library.

use kite_proto::Client;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const KITE: &str = env!("CARGO_BIN_EXE_kite");

/// Points a command at the model `make setup` installed, unless the environment already does.
pub(crate) fn with_model(c: &mut Command) -> &mut Command {
    let root = env!("CARGO_MANIFEST_DIR");
    if std::env::var_os("KITE_MODEL_DIR").is_none() {
        c.env("KITE_MODEL_DIR", format!("{root}/models/all-mpnet-base-v2"));
    }
    if std::env::var_os("KITE_ORT_DYLIB").is_none() {
        c.env("KITE_ORT_DYLIB", format!("{root}/models/libonnxruntime.so"));
    }
    c
}

/// Whether this run of the suite is on PostgreSQL (`KITE_TEST_PG`, set by `kite-pg-cluster`).
pub(crate) fn on_postgres() -> bool {
    std::env::var("KITE_TEST_PG").is_ok_and(|u| !u.is_empty())
}

/// With `KITE_TEST_PG` set (a cluster's `postgres` database, as `kite-pg-cluster` gives it): a
/// new database in that cluster for one daemon, and its URL.
pub(crate) fn test_pg_database() -> Option<String> {
    let base = std::env::var("KITE_TEST_PG").ok().filter(|u| !u.is_empty())?;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!("e2e_{}_{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let c = kite_store_pg::connect(&base).expect("the cluster in KITE_TEST_PG answers");
    c.batch(&format!("CREATE DATABASE {name}")).expect("create a database");
    Some(format!("{}/{name}", base.rsplit_once('/').expect("a database URL").0))
}

/// A daemon on its own temporary project (a git repository) and home.
pub(crate) struct Daemon {
    child: Option<Child>,
    pub(crate) root: PathBuf,
    pub(crate) home: PathBuf,
    args: Vec<String>,
    /// The daemon's stderr, appended across restarts (outside the project, which tests use as a
    /// git work tree), so that a failed call can say what the daemon said.
    log: tempfile::NamedTempFile,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub(crate) fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    pub(crate) fn start_with(args: &[&str]) -> Daemon {
        Daemon::start_on(test_pg_database(), args)
    }

    /// A daemon whose store is the PostgreSQL database at `store` (SQLite in its home without).
    pub(crate) fn start_on(store: Option<String>, args: &[&str]) -> Daemon {
        Daemon::start_configured(store, "", args)
    }

    /// A daemon with `toml` in its kite.toml (and the suite's store).
    pub(crate) fn start_toml(toml: &str, args: &[&str]) -> Daemon {
        Daemon::start_configured(test_pg_database(), toml, args)
    }

    pub(crate) fn start_configured(store: Option<String>, toml: &str, args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new().prefix("kite-e2e").tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        let home = root.join(".kite");
        let mut config = toml.to_string();
        if let Some(url) = store {
            // The same suite on PostgreSQL: this daemon's store is a database of its own.
            config.push_str(&format!("\n[store]\nurl = \"{url}\"\n"));
        }
        if !config.trim().is_empty() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&home).unwrap();
            std::fs::write(home.join("kite.toml"), config).unwrap();
        }
        let mut d = Daemon { child: None, root, home, args: args.iter().map(|s| s.to_string()).collect(), log: tempfile::NamedTempFile::new().unwrap(), _dir: dir };
        d.spawn();
        d
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.home.join("kite.sock")
    }

    fn spawn(&mut self) {
        let child = with_model(&mut Command::new(KITE))
            .arg("daemon")
            .args(&self.args)
            .current_dir(&self.root)
            .env_remove("KITE_HOME")
            .env("KITE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .unwrap();
        self.child = Some(child);
        if !self.args.iter().any(|a| a == "--standby") {
            self.wait_ready();
        }
    }

    /// Waits for this daemon to answer, up to `limit`; how long that took.
    pub(crate) fn answers_within(&mut self, limit: Duration) -> Duration {
        let started = Instant::now();
        let want = self.child.as_ref().unwrap().id();
        loop {
            if let Ok(h) = kite_proto::client::blocking::request::<kite_proto::op::Hello>(&self.socket(), kite_proto::NoArgs {}, Duration::from_secs(1)) {
                assert_eq!(h.pid, want);
                return started.elapsed();
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited: {st}\n{}", self.daemon_report());
            }
            assert!(started.elapsed() < limit, "the daemon did not answer within {limit:?}\n{}", self.daemon_report());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_file(&self) -> std::fs::File {
        std::fs::OpenOptions::new().append(true).open(self.log.path()).unwrap()
    }

    /// The state of the daemon process and the tail of its stderr, for a failure message.
    pub(crate) fn daemon_report(&self) -> String {
        let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        let alive = match &self.child {
            Some(c) => std::path::Path::new(&format!("/proc/{}", c.id())).exists(),
            None => false,
        };
        let pid = self.child.as_ref().map(|c| c.id());
        format!("daemon {pid:?} alive: {alive}; socket exists: {}; its stderr ends:\n{}", self.socket().exists(), tail.join("\n"))
    }

    /// Waits until the socket answers `hello`.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let want = self.child.as_ref().unwrap().id();
            match kite_proto::client::blocking::request::<kite_proto::op::Hello>(&self.socket(), kite_proto::NoArgs {}, Duration::from_secs(5)) {
                Ok(h) if h.pid == want => return,
                // Another daemon answering on this home is a bug of the test, not readiness.
                Ok(h) => panic!("a daemon with pid {} answers while {want} starts", h.pid),
                // A listener that accepts and then vanishes: the killed daemon's, still held
                // by a child it forked that has not exec'd yet. Not ready; try again.
                Err(_) => {}
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited early: {st}");
            }
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// kill -9, no chance to clean up.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub(crate) fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGTERM and wait for a clean exit.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill").arg("-TERM").arg(c.id().to_string()).status().unwrap();
        c.wait().unwrap()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Runs the CLI in the project root.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        self.cli_in(&self.root, args)
    }

    pub(crate) fn cli_in(&self, dir: &Path, args: &[&str]) -> Output {
        with_model(&mut Command::new(KITE)).args(args).current_dir(dir).env_remove("KITE_HOME").output().unwrap()
    }

    pub(crate) fn cli_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KITE);
        with_model(&mut c);
        c.args(args).current_dir(&self.root).env_remove("KITE_HOME");
        c
    }

    /// Runs the CLI with `--json`, expects success and parses stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> Value {
        let out = self.cli(&[args, &["--json"]].concat());
        assert!(out.status.success(), "kite {args:?} failed: {}\n{}", String::from_utf8_lossy(&out.stderr), self.daemon_report());
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("kite {args:?}: bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Runs the CLI, expects failure with exit code 1, returns stderr.
    pub(crate) fn err(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "kite {args:?} should fail; stdout {} stderr {stderr}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(stderr.trim().lines().count(), 1, "one-line error expected: {stderr}");
        stderr
    }

    pub(crate) fn session(&self, name: &str) -> String {
        self.ok(&["session", "register", "--name", name])["id"].as_str().unwrap().to_string()
    }

    pub(crate) fn task(&self, title: &str, extra: &[&str]) -> i64 {
        self.ok(&[&["task", "create", "--title", title], extra].concat())["id"].as_i64().unwrap()
    }

    pub(crate) async fn client(&self) -> Client {
        Client::connect(&self.socket()).await.unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}
