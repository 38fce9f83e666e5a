//! Running one agent attempt: Claude Code through the adapter (its argv, the wiring of kite's
//! hooks and MCP server, the result JSON), or a configured command judged by its exit code.

use super::*;

impl Runner {
    /// Runs the agent once, heart-beating the session meanwhile, and reads how it ended: Claude
    /// Code through the adapter (its result JSON), any other command by its exit code.
    pub(super) async fn run_agent(&self, task: &Task, session: &str, wt: &Worktree, prompt: &str) -> std::io::Result<AgentRun> {
        let mut env = vec![
            ("KITE_TASK_ID".to_string(), task.id.to_string()),
            ("KITE_SESSION_ID".to_string(), session.to_string()),
            ("KITE_HOME".to_string(), self.home.to_string_lossy().into_owned()),
            ("KITE_TASK_PROMPT".to_string(), prompt.to_string()),
            ("KITE_WORKTREE".to_string(), wt.dir.to_string_lossy().into_owned()),
            ("KITE_BRANCH".to_string(), wt.branch.clone()),
        ];
        let cap = self.cfg.result_tail.max(1024) * 4;
        let Some(command) = &self.cfg.command else {
            let argv = self.claude_argv().map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e))?;
            env.extend(claude::env(claude::Profile::Agent));
            let run = proc::run(Shell {
                command: proc::Program::Exec(&argv),
                cwd: &wt.dir,
                env,
                stdin: Some(prompt.to_string()),
                timeout: Some(self.cfg.timeout),
                // The result JSON is one line that can be long (the agent's last message).
                cap: cap.max(1 << 20),
            });
            let o = self.with_heartbeat(session, run).await?;
            let result = ResultJson::parse(&o.stdout);
            let mut ending = claude::ending(o.exit, result.as_ref(), &o.stderr);
            if let (Ending::Transient { why, .. }, Exit::TimedOut) = (&mut ending, o.exit) {
                *why = format!("timed out after {}", kite_core::duration::format_duration(self.cfg.timeout));
            }
            let cost = result.as_ref().map(|r| r.cost(&self.cfg.prices));
            return Ok(AgentRun { exit: o.exit, ending, cost });
        };
        let run = proc::run(Shell { command: proc::Program::Sh(command), cwd: &wt.dir, env, stdin: Some(prompt.to_string()), timeout: Some(self.cfg.timeout), cap });
        let o = self.with_heartbeat(session, run).await?;
        Ok(AgentRun { exit: o.exit, ending: self.shell_ending(&o), cost: None })
    }

    /// Claude Code's command line for an agent: kite's hooks and MCP server (files in the home
    /// naming this kite), `[runner] allow` (or the default and the verify command), the budget.
    fn claude_argv(&self) -> Result<Vec<String>, String> {
        let binary = claude::find(self.cfg.claude.as_deref()).map_err(|e| e.to_string())?;
        let kite = match &self.cfg.kite_exe {
            Some(k) => k.clone(),
            None => std::env::current_exe().map_err(|e| format!("cannot find the kite executable: {e}"))?,
        };
        let wiring = claude::Wiring::write(&self.home, &kite).map_err(|e| format!("cannot write kite's Claude Code settings under {}: {e}", self.home.display()))?;
        let allow = match &self.cfg.allow {
            Some(a) => a.clone(),
            None => {
                let mut a = claude::default_allow();
                if let Some(rule) = self.lander.as_ref().and_then(|l| l.verify_command()).as_deref().and_then(claude::command_rule) {
                    a.push(rule);
                }
                a
            }
        };
        Ok(claude::argv(
            &binary,
            claude::Profile::Agent,
            &claude::Invocation {
                wiring: Some(&wiring),
                allow: &allow,
                bypass_permissions: self.cfg.bypass_permissions,
                max_budget_usd: self.cfg.max_budget_usd,
                max_turns: self.cfg.max_turns,
                model: self.cfg.model.as_deref(),
            },
        ))
    }

    /// A plain command's ending, by its exit code: 0 finished, a transient code (or a signal, or
    /// the timeout) worth retrying, anything else failed.
    fn shell_ending(&self, o: &proc::Output) -> Ending {
        let transient = match o.exit {
            Exit::Code(0) => return Ending::Finished { result: o.stdout.clone(), denials: vec![] },
            Exit::Code(c) => self.cfg.transient_exit_codes.contains(&c) || signal_exit(c).is_some(),
            Exit::Signal(_) | Exit::TimedOut => true,
        };
        let mut error = match o.exit {
            Exit::Code(c) => match signal_exit(c) {
                Some(sig) => format!("killed by signal {sig} (exit code {c})"),
                None => o.exit.to_string(),
            },
            e => e.to_string(),
        };
        if o.exit == Exit::TimedOut {
            error = format!("timed out after {}", kite_core::duration::format_duration(self.cfg.timeout));
        }
        let stderr = proc::tail(o.stderr.trim(), 500);
        if !stderr.is_empty() {
            error = format!("{error}; stderr: {stderr}");
        }
        if transient { Ending::Transient { why: error, status: None } } else { Ending::Failed { why: error } }
    }
}

/// One run of an agent: how it ended and (for Claude Code) what it cost.
pub(super) struct AgentRun {
    pub(super) exit: Exit,
    pub(super) ending: Ending,
    pub(super) cost: Option<Cost>,
}

/// `sh -c` reports a child killed by signal N as exit code 128 + N (it does not always exec the
/// command), so such codes count as death by a signal.
fn signal_exit(code: i32) -> Option<i32> {
    (129..=128 + 64).contains(&code).then(|| code - 128)
}

