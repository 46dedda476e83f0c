//! `migrate FILE [MACHINE]`: a process that moves to another machine of
//! an RSE OS cluster and back mid-run, with output that must not show it.
//!
//! Reads FILE and then its standard input (a pipe, at home), and prints
//! each line numbered with a running checksum, after some plain
//! computation and heap use per line. With MACHINE, after the third
//! line of the file it writes `move PID MACHINE` to /proc/braid (the
//! kernel moves it at its return to user mode), checks that /proc/braid
//! at home (read through the deputy) lists it running there, and after
//! the third line of the pipe writes `move PID home` and checks that it
//! is listed no more. Those checks go to standard error; standard output
//! must be the same byte for byte with and without MACHINE. With
//! `spin` after MACHINE, once moved it computes until a SIGUSR1 (whose
//! handler must run at home) instead of asking to come back. After the
//! fifth line it forks a child that exits with a status computed from
//! the checksum in its memory (while away, the child runs at home), and
//! sends itself SIGUSR1, whose handler must have run when kill returns.

use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::say;

fn mix(sum: u64, line: &str) -> u64 {
    let mut h = sum;
    for b in line.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Plain computation, run wherever the process is.
    for i in 0..20_000u64 {
        h = h.rotate_left(7) ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    h
}

fn braid() -> Result<String, String> {
    let mut s = String::new();
    std::fs::File::open("/proc/braid")
        .and_then(|mut f| f.read_to_string(&mut s))
        .map_err(|e| format!("read /proc/braid: {e}"))?;
    Ok(s)
}

/// Writes `cmd` to /proc/braid (`move PID M`, `move PID home`).
pub fn ask(cmd: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/braid")
        .map_err(|e| format!("open /proc/braid: {e}"))?;
    f.write_all(cmd.as_bytes())
        .map_err(|e| format!("{cmd}: {e}"))
}

fn remote_line(pid: u32) -> Result<Option<String>, String> {
    let me = format!("remote {pid} ");
    Ok(braid()?
        .lines()
        .find(|l| l.starts_with(&me))
        .map(str::to_owned))
}

/// A child forked now (at home, by the deputy, if the process is away)
/// sees the memory as it is: it exits with a status computed from it.
fn fork_check(sum: u64) -> Result<(), String> {
    let want = (sum % 100) as i32;
    // SAFETY: the child only computes and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err("fork failed".into());
    }
    if pid == 0 {
        crate::util::child_exit(want);
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err("waitpid failed".into());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != want {
        return Err(format!(
            "the child saw other memory: status {status:#x}, want exit {want}"
        ));
    }
    Ok(())
}

static USR1: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_: libc::c_int) {
    USR1.store(true, Ordering::SeqCst);
}

/// Computes (away, making no system call) until SIGUSR1 comes: its
/// handler runs at home, where the signal brings the process.
fn spin_until_usr1(pid: u32) -> Result<(), String> {
    eprintln!("migrate: spinning until SIGUSR1");
    let t0 = std::time::Instant::now();
    let mut h = 1u64;
    while !USR1.load(Ordering::SeqCst) {
        for i in 0..100_000u64 {
            h = h.rotate_left(5) ^ i;
        }
        std::hint::black_box(h);
        if t0.elapsed().as_secs() > 120 {
            return Err("no SIGUSR1 in 120 s".into());
        }
    }
    if let Some(l) = remote_line(pid)? {
        return Err(format!("still away after its signal: {l}"));
    }
    eprintln!("migrate: SIGUSR1 brought it home");
    Ok(())
}

/// A signal the process sends itself (while away: kill goes home, the
/// deputy delivers it there into the memory and registers the copy gets,
/// the handler runs away, and its rt_sigreturn goes home too).
fn signal_check(pid: u32) -> Result<(), String> {
    USR1.store(false, Ordering::SeqCst);
    // SAFETY: a signal to ourselves; its handler only stores to an atomic.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) } != 0 {
        return Err("kill(self, SIGUSR1) failed".into());
    }
    if !USR1.swap(false, Ordering::SeqCst) {
        return Err("the SIGUSR1 handler did not run before kill returned".into());
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let file = args.first().ok_or("usage: migrate FILE [MACHINE [spin]]")?;
    let to = args.get(1);
    let spin = args.get(2).is_some_and(|a| a == "spin");
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe { libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t) };
    let pid = std::process::id();
    // A small buffer: the file is read a little at a time, from home and
    // from the other machine.
    let f = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
    let reader = std::io::BufReader::with_capacity(64, f);
    let mut sum = 0u64;
    let mut kept: Vec<String> = Vec::new();
    let mut n = 0;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{file}: {e}"))?;
        let line = line.as_str();
        sum = mix(sum, line);
        kept.push(format!("{line}:{sum:x}"));
        n += 1;
        say!("{n:03} file {line} {sum:016x}");
        if let (2, Some(m)) = (i, to) {
            ask(&format!("move {pid} {m}"))?;
            // Moved now: this read is served by the deputy at home.
            let l = remote_line(pid)?.ok_or("/proc/braid does not list this process as remote")?;
            if !l.contains(&format!(" machine {m} ")) {
                return Err(format!("/proc/braid says `{l}`"));
            }
            if std::process::id() != pid {
                return Err("getpid changed with the move".into());
            }
            eprintln!("migrate: moved: /proc/braid at home: {l}");
            if spin {
                spin_until_usr1(pid)?;
            }
        }
        if i == 4 {
            fork_check(sum)?;
            signal_check(pid)?;
        }
    }
    let stdin = std::io::stdin();
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        sum = mix(sum, &line);
        kept.push(format!("{line}:{sum:x}"));
        n += 1;
        say!("{n:03} pipe {line} {sum:016x}");
        if let (2, Some(_), false) = (i, to, spin) {
            ask(&format!("move {pid} home"))?;
            if let Some(l) = remote_line(pid)? {
                return Err(format!("still remote after `move {pid} home`: {l}"));
            }
            eprintln!("migrate: back home");
        }
    }
    let all: usize = kept.iter().map(String::len).sum();
    say!("total {n} lines, {all} bytes kept, checksum {sum:016x}");
    Ok(())
}
