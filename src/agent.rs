//! Which agent process a hook or `kite mcp` works for. Claude Code starts its MCP servers as its
//! own children and runs hook commands through a shell, so walking up from our parent past any
//! shell reaches the same Claude Code process from both. Its pid and start time (so a reused
//! pid is a different key) make the `key` of `session.register`: one kite session per Claude
//! Code session, whichever of the two registers first.

/// The kite session the runner started this agent under (`KITE_SESSION_ID`, which the runner
/// sets and Claude Code passes on to its hooks and MCP servers): that agent's hooks and MCP
/// server use it instead of registering one of their own (one session per agent), and never end
/// it (the runner does, after landing the task with the session's claim).
pub(crate) fn runner_session() -> Option<String> {
    std::env::var("KITE_SESSION_ID").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Programs between an agent and a hook command that are not the agent.
const WRAPPERS: &[&str] = &["sh", "bash", "dash", "zsh", "fish", "ksh", "env", "timeout", "nice", "nohup", "stdbuf"];

/// `/proc/PID/stat`: the command name, the parent pid and the start time (clock ticks since boot).
fn stat(pid: u32) -> Option<(String, u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = s.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state, ppid (field 4), ... starttime (field 22).
    Some((comm, f.get(1)?.parse().ok()?, f.get(19)?.parse().ok()?))
}

/// The key of the agent process above this one, or none (no /proc, or only init above).
pub(crate) fn key() -> Option<String> {
    let mut pid = stat(std::process::id())?.1;
    for _ in 0..16 {
        let (comm, ppid, start) = stat(pid)?;
        if pid <= 1 {
            return None;
        }
        if !WRAPPERS.contains(&comm.as_str()) {
            return Some(format!("agent-pid:{pid}:{start}"));
        }
        pid = ppid;
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_is_stable_and_carries_a_pid_and_a_start_time() {
        let k = super::key().expect("a parent process");
        assert_eq!(Some(k.clone()), super::key());
        let parts: Vec<&str> = k.split(':').collect();
        assert_eq!(parts.len(), 3, "{k}");
        assert!(parts[1].parse::<u32>().unwrap() > 1, "{k}");
        assert!(parts[2].parse::<u64>().is_ok(), "{k}");
    }
}
