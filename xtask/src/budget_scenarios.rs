//! Instruction budgets of hot paths: a benchmark row of issue 18 run as
//! `cargo xtask bench` runs it under `-icount` (one CPU, `pc`, 1 GiB;
//! there 1 guest ns is 1 guest instruction, so the figure does not depend
//! on the host's load), failing when the path costs more than its budget.
//! A budget lies between the cost before the change that cut it and the
//! cost after, so losing that change fails the scenario.

use crate::artifacts::Addition;
use crate::qemu::Machine;
use crate::userland::GUEST_BIN_DIR;
use crate::RunOpts;

/// A pinned pipe context switch (`ctxsw_pipe_pinned`, guest instructions
/// per switch): 2,490 before the wait queue's lock-free length, the
/// skipped second look of a pipe sleeper and the one wait of a small
/// pipe read, 2,260 after (docs/profiles.md).
pub fn pipe_switch() -> Result<(), String> {
    within("ctxsw_pipe_pinned", 2_400.0)
}

/// A null syscall (`null_syscall`: getppid, guest instructions per call
/// with the benchmark loop): 83 when the light path called into a Rust
/// handler (8 registers saved, the current task borrowed), 33 since it
/// reads the running task's ids in hal's entry assembly. Issue 18's
/// target is 60.
pub fn null_syscall() -> Result<(), String> {
    within("null_syscall", 45.0)
}

/// Runs rsebench row `row` and checks its figure is at most `budget`.
fn within(row: &str, budget: f64) -> Result<(), String> {
    let adds: Vec<Addition> = crate::userland::build_user_programs()?
        .into_iter()
        .map(|(host, guest)| Addition { host, guest })
        .collect();
    let opts = RunOpts {
        exec: Some(format!("{GUEST_BIN_DIR}/rsebench {row}")),
        adds,
        machine: Some(Machine::Pc),
        smp: Some(1),
        mem: Some(1024),
        icount: true,
        ..Default::default()
    };
    let (out, status) = crate::scenarios::exec_opts(&opts, "budget")?;
    let value = figure(&out, row)
        .ok_or_else(|| format!("no \"BENCH {row} N ns\" line (status {status}):\n{out}"))?;
    if value > budget {
        return Err(format!(
            "{row}: {value:.1} instructions, over its budget of {budget:.0}"
        ));
    }
    eprintln!("  {row}: {value:.1} instructions (budget {budget:.0})");
    Ok(())
}

/// The value of `BENCH ROW VALUE ns` in `console`.
fn figure(console: &str, row: &str) -> Option<f64> {
    console.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("BENCH") && w.next() == Some(row))
            .then(|| w.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::figure;

    #[test]
    fn reads_the_row_figure() {
        let out = "x\nBENCH other 9.0 ns\nBENCH ctxsw_pipe_pinned 2497.3 ns\r\nBENCH-DONE\n";
        assert_eq!(figure(out, "ctxsw_pipe_pinned"), Some(2497.3));
        assert_eq!(figure(out, "missing"), None);
        assert_eq!(
            figure("BENCH ctxsw_pipe_pinned n/a why", "ctxsw_pipe_pinned"),
            None
        );
    }
}
