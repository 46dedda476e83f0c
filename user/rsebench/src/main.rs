//! `rsebench`: the benchmark suite that `cargo xtask bench` runs on RSE OS
//! and on Linux, as the same static binary, booted as init
//! (`rdinit=/usr/bin/rsebench`) from the same initramfs.
//!
//! It prints one line per result, `BENCH <name> <value> <unit>`, and a
//! line `BENCH-DONE` at the end; the harness parses the console. A
//! benchmark whose syscalls the kernel lacks prints `BENCH <name> n/a
//! <why>` instead, so a gap shows in the table rather than a crash.
//!
//! `/etc/rse/bench.conf` holds `quick` for the smoke-test size (the
//! default is the full size), `rows PREFIX…` to run only the rows whose
//! names start so, and `disk DEVICE DIR` in the storage boot: an ext4
//! file system the boot script mounted there; with it only the `disk_*`
//! rows run, without it only the others. Run by hand with `rsebench all`,
//! `rsebench PREFIX…` or `rsebench --disk DEVICE DIR [PREFIX…]`.

mod clock;
mod ctxsw;
mod disk;
mod disk_rand;
mod disk_seq;
mod disk_sqlite;
mod file;
mod memory;
mod null_syscall;
mod pipe;
mod process;
mod ring;
mod sys;
mod tcp;
mod threads;
mod vdso_clock;

/// Scales a full-size iteration count down for `quick` runs.
#[derive(Clone, Copy)]
pub struct Size {
    quick: bool,
}

impl Size {
    pub fn n(self, full: u64) -> u64 {
        if self.quick {
            (full / 50).max(2)
        } else {
            full
        }
    }
}

/// What a benchmark measured.
pub enum Outcome {
    /// Nanoseconds per operation (lower is better).
    NsPerOp(f64),
    /// Megabytes (10^6 bytes) per second (higher is better).
    MBps(f64),
    /// Operations per second (higher is better).
    Iops(f64),
    /// The kernel lacks something this benchmark needs.
    Unsupported(String),
}

type Bench = fn(Size) -> Outcome;

/// Every benchmark, in the order they run.
const BENCHES: &[(&str, Bench)] = &[
    ("null_syscall", null_syscall::run),
    ("clock_gettime", vdso_clock::run),
    ("ring_nop_batch256", ring::nop_batch),
    ("ctxsw_pipe_pinned", ctxsw::pinned),
    ("ctxsw_pipe_unpinned", ctxsw::unpinned),
    ("thread_create_join", threads::create_join),
    ("futex_pingpong_pinned", threads::futex_pinned),
    ("futex_pingpong_unpinned", threads::futex_unpinned),
    ("mutex_contended_4", threads::mutex_contended),
    ("fork_exit_wait", process::fork_exit_wait),
    ("fork_execve_wait", process::fork_execve_wait),
    ("mmap_touch_munmap_4k", memory::mmap_4k),
    ("mmap_touch_munmap_1m", memory::mmap_1m),
    ("page_fault", memory::page_fault),
    ("open_read_close", file::open_read_close),
    ("pipe_throughput", pipe::throughput),
    ("tcp_loopback_bulk", tcp::bulk),
];

type DiskBench = fn(Size, &disk::Disk) -> Outcome;

/// The storage rows, in the order they run (the seq_write row leaves the
/// data file the read rows read; each makes it if it is missing).
const DISK_BENCHES: &[(&str, DiskBench)] = &[
    ("disk_seq_write", disk_seq::write),
    ("disk_seq_read_cold", disk_seq::read_cold),
    ("disk_seq_read_warm", disk_seq::read_warm),
    ("disk_rand_read_4k", disk_rand::read),
    ("disk_rand_write_4k", disk_rand::write),
    ("disk_fsync_4k", disk_rand::fsync_latency),
    ("disk_seq_write_direct", disk_seq::write_direct),
    ("disk_seq_read_direct", disk_seq::read_direct),
    ("disk_sqlite_fullsync_tx", disk_sqlite::fullsync_tx),
];

fn report(name: &str, o: Outcome) {
    match o {
        Outcome::NsPerOp(v) => sys::say(&format!("BENCH {name} {v:.1} ns")),
        Outcome::MBps(v) => sys::say(&format!("BENCH {name} {v:.1} MB/s")),
        Outcome::Iops(v) => sys::say(&format!("BENCH {name} {v:.1} IOPS")),
        Outcome::Unsupported(why) => {
            // One console line per result, whatever the reason says.
            let why = why.replace(['\n', '\r'], " ");
            sys::say(&format!("BENCH {name} n/a {why}"))
        }
    }
}

/// What bench.conf and the command line ask for.
struct Plan {
    quick: bool,
    disk: Option<disk::Disk>,
    /// Name prefixes; empty: every row of the boot's kind.
    rows: Vec<String>,
}

fn plan(args: &[String]) -> Plan {
    let conf = std::fs::read_to_string("/etc/rse/bench.conf").unwrap_or_default();
    let mut p = Plan {
        quick: false,
        disk: None,
        rows: Vec::new(),
    };
    for line in conf.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["quick"] => p.quick = true,
            ["rows", rows @ ..] => p.rows.extend(rows.iter().map(|r| r.to_string())),
            ["disk", dev, dir] => {
                p.disk = Some(disk::Disk {
                    dev: dev.to_string(),
                    dir: dir.to_string(),
                })
            }
            _ => {}
        }
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "all" => {}
            "--disk" => match (it.next(), it.next()) {
                (Some(dev), Some(dir)) => {
                    p.disk = Some(disk::Disk {
                        dev: dev.clone(),
                        dir: dir.clone(),
                    })
                }
                _ => sys::die("--disk needs DEVICE DIR"),
            },
            name => p.rows.push(name.to_string()),
        }
    }
    p
}

fn main() {
    // First: how long the kernel took to get here (guest time since the
    // kernel started its clock).
    let boot_ns = clock::boottime_ns();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("exit") {
        // The child of the execve benchmark.
        std::process::exit(0);
    }
    let init = std::process::id() == 1;
    let p = plan(&args[1..]);
    if init {
        sys::say("BENCH-START");
        // The storage boot's init is a script that mounted the disk
        // first: its boot_to_init would not be the kernel's.
        if p.disk.is_none() {
            report("boot_to_init", Outcome::NsPerOp(boot_ns as f64));
        }
    }
    let size = Size { quick: p.quick };
    let wanted =
        |name: &str| p.rows.is_empty() || p.rows.iter().any(|r| name.starts_with(r.as_str()));
    // With a disk the storage rows run, without one the others: each
    // boot of `cargo xtask bench` is one kind.
    match &p.disk {
        None => {
            for (name, bench) in BENCHES.iter().filter(|(n, _)| wanted(n)) {
                report(name, bench(size));
            }
        }
        Some(d) => {
            for (name, bench) in DISK_BENCHES.iter().filter(|(n, _)| wanted(n)) {
                report(name, bench(size, d));
            }
        }
    }
    sys::say("BENCH-DONE");
    if init {
        sys::power_off();
    }
}
