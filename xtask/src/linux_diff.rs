//! Differential tests against Linux: program groups (`user/linux-diff/`),
//! run in the same root (busybox plus Debian packages) on RSE OS and on
//! Debian's own Linux kernel (the one the benchmarks boot), must print the
//! same thing. Linux is the oracle; nothing expected is written down.
//!
//! All groups run in one boot per side (two boots for the whole suite);
//! each group is its own scenario (`linux_diff_NAME`), compared on its
//! own section of the two consoles.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::artifacts::{self, Addition};
use crate::qemu::{self, Config, Machine};
use crate::RunOpts;

/// Where `user/linux-diff` goes in the guest.
const DIR: &str = "/etc/rse/diff";
const SUITE: &str = "/etc/rse/diff-suite.sh";
const LINUX_INIT: &str = "/etc/rse/linux-init";
const END: &str = "DIFF-SUITE-END";

/// One program group: its name, the packages it needs, the command that
/// runs it (from `/`).
struct Group {
    name: &'static str,
    pkgs: &'static [&'static str],
    cmd: &'static str,
}

const GROUPS: &[Group] = &[
    Group {
        name: "sqlite3",
        pkgs: &["sqlite3"],
        cmd: "/bin/sh /etc/rse/diff/sqlite3.sh",
    },
    Group {
        name: "python3",
        pkgs: &["python3"],
        cmd: "python3 /etc/rse/diff/python3.py",
    },
    Group {
        name: "perl",
        pkgs: &["perl"],
        cmd: "perl /etc/rse/diff/perl.pl",
    },
    Group {
        name: "coreutils",
        pkgs: &["coreutils", "grep", "sed", "gawk", "findutils"],
        cmd: "bash /etc/rse/diff/coreutils.sh",
    },
    Group {
        name: "bash",
        pkgs: &["bash"],
        cmd: "bash /etc/rse/diff/bash.sh",
    },
    Group {
        name: "netlink",
        pkgs: &["python3"],
        cmd: "/bin/sh /etc/rse/diff/netlink.sh",
    },
    Group {
        name: "lighttpd",
        pkgs: &["lighttpd"],
        cmd: "/bin/sh /etc/rse/diff/lighttpd.sh",
    },
];

/// The same machine for both kernels.
const MACHINE: Machine = Machine::Pc;
const SMP: u32 = 2;
const MEM_MIB: u32 = 1024;
const TIMEOUT_SECS: u64 = 600;

fn begin(name: &str) -> String {
    format!("== {name} begin")
}

fn end(name: &str) -> String {
    format!("== {name} status ")
}

/// The suite's driver: every group in a clean environment (the same on
/// both kernels: `env -i`, fixed PATH and HOME, from `/`), stdout and
/// stderr together, between markers that carry its exit status.
fn suite_script() -> String {
    let mut s = String::from("#!/bin/sh\n");
    for g in GROUPS {
        s += &format!(
            "echo '{}'\ncd / && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb {} 2>&1\necho \"{}$?\"\n",
            begin(g.name),
            g.cmd,
            end(g.name)
        );
    }
    s += &format!("echo {END}\n");
    s
}

/// One group's lines (CRLF made LF) and its exit status.
fn section(console: &str, name: &str) -> Result<(String, String), String> {
    let console = console.replace("\r\n", "\n");
    let b = format!("{}\n", begin(name));
    let start = console
        .find(&b)
        .ok_or_else(|| format!("no {:?} line; console:\n{console}", begin(name)))?;
    let rest = &console[start + b.len()..];
    let e = end(name);
    let stop = rest
        .find(&e)
        .ok_or_else(|| format!("no {e:?}… line; console:\n{console}"))?;
    let status = rest[stop + e.len()..]
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    Ok((rest[..stop].to_string(), status))
}

fn write_tmp(name: &str, text: &str, mode: u32) -> Result<PathBuf, String> {
    let p = artifacts::out_dir().join(format!("{name}-{}", std::process::id()));
    artifacts::write_with_mode(&p, text.as_bytes(), mode)?;
    Ok(p)
}

/// The two consoles: (RSE OS, Linux).
type Consoles = (String, String);

/// Boots the whole suite once on each kernel.
fn run_suite() -> Result<Consoles, String> {
    let mut pkgs: Vec<String> = Vec::new();
    for p in GROUPS.iter().flat_map(|g| g.pkgs) {
        if !pkgs.iter().any(|q| q == p) {
            pkgs.push(p.to_string());
        }
    }
    let suite_file = write_tmp("diff-suite", &suite_script(), 0o755)?;
    // Linux's init does what a Debian system's early boot does for these
    // programs (devtmpfs, /proc, udev's /dev/fd and /dev/std* links), runs
    // the suite, and exits: the kernel (panic=-1, QEMU -no-reboot) stops
    // the machine.
    let init = format!(
        "#!/bin/sh\nmount -t devtmpfs dev /dev\nmount -t proc proc /proc\n\
         ln -s /proc/self/fd /dev/fd\nln -s /proc/self/fd/0 /dev/stdin\n\
         ln -s /proc/self/fd/1 /dev/stdout\nln -s /proc/self/fd/2 /dev/stderr\n\
         /bin/sh {SUITE}\n"
    );
    let init_file = write_tmp("linux-init", &init, 0o755)?;
    let adds = vec![
        Addition {
            host: artifacts::root().join("user/linux-diff"),
            guest: DIR.into(),
        },
        Addition {
            host: suite_file.clone(),
            guest: SUITE.into(),
        },
        Addition {
            host: init_file.clone(),
            guest: LINUX_INIT.into(),
        },
    ];

    let rse = RunOpts {
        exec: Some(format!("/bin/sh {SUITE}")),
        adds: adds.clone(),
        pkgs: pkgs.clone(),
        machine: Some(MACHINE),
        smp: Some(SMP),
        mem: Some(MEM_MIB),
        ..Default::default()
    };
    let cfg = rse.config("diff")?;
    let t = std::time::Instant::now();
    let out = qemu::run_captured(&cfg, Duration::from_secs(TIMEOUT_SECS), false)
        .map_err(|e| format!("qemu (RSE OS): {e}"));
    eprintln!("  RSE OS boot: {:.1}s", t.elapsed().as_secs_f64());
    for p in [&cfg.log, cfg.initrd.as_ref().unwrap_or(&cfg.log)] {
        let _ = std::fs::remove_file(p);
    }
    let rse_console = out?.console_str();

    let (vmlinuz, _) = crate::bench::linux::kernel()?;
    let initrd = artifacts::build_initramfs(
        None,
        &adds,
        &pkgs,
        &format!("initramfs-diff-linux-{}.cpio", std::process::id()),
    )?;
    let log = artifacts::out_dir().join(format!("linux-diff-{}.log", std::process::id()));
    let mut cfg = Config::new(&vmlinuz, &log);
    cfg.machine = MACHINE;
    cfg.smp = SMP;
    cfg.mem_mib = MEM_MIB;
    cfg.initrd = Some(initrd.clone());
    cfg.append = format!("console=ttyS0 quiet loglevel=0 panic=-1 rdinit={LINUX_INIT}");
    let t = std::time::Instant::now();
    let out = qemu::run_captured(&cfg, Duration::from_secs(TIMEOUT_SECS), false)
        .map_err(|e| format!("qemu (Linux): {e}"));
    eprintln!("  Linux boot: {:.1}s", t.elapsed().as_secs_f64());
    for p in [&suite_file, &init_file, &initrd, &log] {
        let _ = std::fs::remove_file(p);
    }
    Ok((rse_console, out?.console_str()))
}

/// The suite's consoles, booted once for all the groups' scenarios.
fn consoles() -> Result<&'static Consoles, String> {
    static SUITE_RUN: OnceLock<Result<Consoles, String>> = OnceLock::new();
    SUITE_RUN
        .get_or_init(run_suite)
        .as_ref()
        .map_err(Clone::clone)
}

/// Ok if group `what` printed the same lines and ended with the same
/// status on both kernels.
fn compare(what: &str) -> Result<(), String> {
    let (rse, linux) = consoles()?;
    let (linux, linux_status) = section(linux, what).map_err(|e| format!("Linux: {e}"))?;
    let (ours, our_status) = section(rse, what).map_err(|e| format!("RSE OS: {e}"))?;
    // The oracle must have run the group to its end: a script that fails
    // on Linux too (a missing program, a typo) would compare equal.
    if linux_status != "0" {
        return Err(format!(
            "{what}: the group ends with status {linux_status} on Linux: the test is broken\n--- Linux ---\n{linux}"
        ));
    }
    if ours != linux || our_status != linux_status {
        let l: Vec<&str> = linux.lines().collect();
        let o: Vec<&str> = ours.lines().collect();
        let at = l
            .iter()
            .zip(&o)
            .position(|(a, b)| a != b)
            .unwrap_or(l.len().min(o.len()));
        return Err(format!(
            "{what}: RSE OS and Linux differ at line {} (status {our_status} vs {linux_status}):\n  Linux : {:?}\n  RSE OS: {:?}\n--- Linux ---\n{linux}--- RSE OS ---\n{ours}",
            at + 1,
            l.get(at),
            o.get(at)
        ));
    }
    eprintln!("  {what}: {} lines, the same on both", ours.lines().count());
    Ok(())
}

pub fn sqlite3() -> Result<(), String> {
    compare("sqlite3")
}

pub fn python3() -> Result<(), String> {
    compare("python3")
}

pub fn perl() -> Result<(), String> {
    compare("perl")
}

pub fn coreutils() -> Result<(), String> {
    compare("coreutils")
}

pub fn bash() -> Result<(), String> {
    compare("bash")
}

pub fn netlink() -> Result<(), String> {
    compare("netlink")
}

pub fn lighttpd() -> Result<(), String> {
    compare("lighttpd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_found_by_name() {
        let console =
            "noise\r\n== a begin\r\nx\r\ny\r\n== a status 3\r\n== b begin\n== b status 0\n";
        assert_eq!(
            section(console, "a").unwrap(),
            ("x\ny\n".into(), "3".into())
        );
        assert_eq!(section(console, "b").unwrap(), (String::new(), "0".into()));
        assert!(section(console, "c").is_err());
    }

    #[test]
    fn every_group_is_in_the_driver() {
        let s = suite_script();
        for g in GROUPS {
            assert!(s.contains(&begin(g.name)) && s.contains(g.cmd));
        }
    }
}
