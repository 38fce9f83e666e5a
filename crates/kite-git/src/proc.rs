//! Running `sh -c COMMAND` (or a program with its arguments) with a prompt on stdin, a timeout,
//! and bounded capture.
//!
//! Shell context providers, strategy audits and agent sessions all run user commands that may hang,
//! print without end, or leave children behind. Each runs in its own process group so a timeout
//! kills the whole tree (a shell waiting on `sleep` would otherwise keep the pipes open forever),
//! output is capped (keeping the tail, which is where results and errors are), and the group is
//! cleaned up when the command exits.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut => write!(f, "timed out"),
        }
    }
}

/// A finished command's status and (capped) output.
#[derive(Debug, Clone)]
pub struct Output {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
    /// Whether stdout went over the cap (only its tail is kept).
    pub stdout_truncated: bool,
}

/// The program: a user's shell command, or an agent kite knows, run with exact arguments (a
/// prompt or a path never goes through a shell's quoting).
#[derive(Debug, Clone, Copy)]
pub enum Program<'a> {
    Sh(&'a str),
    /// `argv[0]` (found on PATH unless it has a slash) with the rest as its arguments.
    Exec(&'a [String]),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Shell<'a> {
    pub command: Program<'a>,
    pub cwd: &'a Path,
    pub env: Vec<(String, String)>,
    pub stdin: Option<String>,
    pub timeout: Option<Duration>,
    /// Bytes of stdout to keep (the tail); stderr keeps at most 16 KiB.
    pub cap: usize,
}

const STDERR_CAP: usize = 16 * 1024;

/// Runs the command to its end (or its timeout). Errors only when it cannot be started.
pub async fn run(s: Shell<'_>) -> std::io::Result<Output> {
    let mut cmd = match s.command {
        Program::Sh(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        Program::Exec(argv) => {
            let (program, args) = argv.split_first().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no program to run"))?;
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    };
    cmd.current_dir(s.cwd)
        .envs(s.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if s.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    // However this ends (exit, timeout, or the caller dropping us), the group goes.
    let _group = GroupGuard(pid);
    if let (Some(input), Some(mut stdin)) = (s.stdin, child.stdin.take()) {
        // A command that does not read its stdin closes the pipe: that is not an error.
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
    }
    let out = tokio::spawn(read_tail(child.stdout.take(), s.cap));
    let err = tokio::spawn(read_tail(child.stderr.take(), STDERR_CAP));

    let waited = match s.timeout {
        Some(t) => tokio::time::timeout(t, child.wait()).await.ok(),
        None => Some(child.wait().await),
    };
    let exit = match waited {
        Some(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(sig)) => Exit::Signal(sig),
                (None, None) => Exit::Code(-1),
            }
        }
        Some(Err(e)) => return Err(e),
        None => Exit::TimedOut,
    };
    // Whatever is left of the group (the hung command, or children it left behind) goes now,
    // so that the pipes close and the readers finish.
    kill_group(pid);
    if exit == Exit::TimedOut {
        let _ = child.kill().await;
    }
    let (stdout, stdout_truncated) = join_reader(out).await;
    let (stderr, _) = join_reader(err).await;
    Ok(Output { exit, stdout, stderr, stdout_truncated })
}

struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        // ESRCH (already gone) is the common, fine case.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

async fn join_reader(h: tokio::task::JoinHandle<(Vec<u8>, bool)>) -> (String, bool) {
    // A grandchild that left the process group may still hold the pipe: do not wait for it long.
    let abort = h.abort_handle();
    match tokio::time::timeout(Duration::from_secs(2), h).await {
        Ok(Ok((bytes, truncated))) => (String::from_utf8_lossy(&bytes).into_owned(), truncated),
        _ => {
            abort.abort();
            (String::new(), false)
        }
    }
}

async fn read_tail<R: AsyncRead + Unpin>(r: Option<R>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut r) = r else { return (Vec::new(), false) };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 8192];
    let mut truncated = false;
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > cap * 2 {
                    let cut = buf.len() - cap;
                    buf.drain(..cut);
                    truncated = true;
                }
            }
        }
    }
    if buf.len() > cap {
        let cut = buf.len() - cap;
        buf.drain(..cut);
        truncated = true;
    }
    (buf, truncated)
}

/// The last `max` bytes of a string, cut at a character boundary.
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = s.len() - max;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(command: &str) -> Shell<'_> {
        Shell {
            command: Program::Sh(command),
            cwd: Path::new("/"),
            env: vec![("X".into(), "42".into())],
            stdin: Some("hello".into()),
            timeout: Some(Duration::from_secs(20)),
            cap: 1 << 20,
        }
    }

    #[tokio::test]
    async fn exit_codes_signals_stdin_env() {
        let o = run(sh("cat; echo \" $X\"; echo err >&2; exit 3")).await.unwrap();
        assert_eq!(o.exit, Exit::Code(3));
        assert_eq!(o.stdout, "hello 42\n");
        assert_eq!(o.stderr, "err\n");
        let o = run(sh("kill -9 $$")).await.unwrap();
        assert_eq!(o.exit, Exit::Signal(9));
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let mut s = sh("sleep 30; echo never");
        s.timeout = Some(Duration::from_millis(300));
        let start = std::time::Instant::now();
        let o = run(s).await.unwrap();
        assert_eq!(o.exit, Exit::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(o.stdout, "");
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("alive");
        let cmd = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let mut s = sh(&cmd);
        s.stdin = None;
        let run = tokio::time::timeout(Duration::from_millis(200), run(s)).await;
        assert!(run.is_err(), "still running when dropped");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "the background child was killed with the group");
    }

    #[tokio::test]
    async fn output_is_capped_to_its_tail() {
        let mut s = sh("seq 1 100000");
        s.cap = 100;
        let o = run(s).await.unwrap();
        assert!(o.stdout_truncated);
        assert!(o.stdout.ends_with("100000\n"));
        assert!(o.stdout.len() <= 100);
        assert_eq!(tail("héllo", 4), "llo");
    }
}
