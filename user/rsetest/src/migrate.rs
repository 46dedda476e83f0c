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
//! must be the same byte for byte with and without MACHINE. After the
//! fifth line it forks a child that exits with a status computed from
//! the checksum in its memory (while away, the child runs at home).

use std::io::{BufRead, Read, Write};

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

fn ask(cmd: &str) -> Result<(), String> {
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

pub fn run(args: &[String]) -> Result<(), String> {
    let file = args.first().ok_or("usage: migrate FILE [MACHINE]")?;
    let to = args.get(1);
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
        }
        if i == 4 {
            fork_check(sum)?;
        }
    }
    let stdin = std::io::stdin();
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        sum = mix(sum, &line);
        kept.push(format!("{line}:{sum:x}"));
        n += 1;
        say!("{n:03} pipe {line} {sum:016x}");
        if let (2, Some(_)) = (i, to) {
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
