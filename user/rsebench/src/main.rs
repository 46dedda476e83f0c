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
//! default is the full size) and, for `cargo xtask bench --rows`,
//! `row=NAME` words: only those run (none: all). Run by hand with
//! `rsebench all` or `rsebench NAME…`.

mod clock;
mod ctxsw;
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

fn report(name: &str, o: Outcome) {
    match o {
        Outcome::NsPerOp(v) => sys::say(&format!("BENCH {name} {v:.1} ns")),
        Outcome::MBps(v) => sys::say(&format!("BENCH {name} {v:.1} MB/s")),
        Outcome::Unsupported(why) => sys::say(&format!("BENCH {name} n/a {why}")),
    }
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
    if init {
        sys::say("BENCH-START");
        report("boot_to_init", Outcome::NsPerOp(boot_ns as f64));
    }
    let conf = std::fs::read_to_string("/etc/rse/bench.conf").unwrap_or_default();
    let quick = conf.split_whitespace().any(|w| w == "quick");
    let size = Size { quick };
    let mut wanted: Vec<&str> = args[1..]
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "all")
        .collect();
    if args.len() < 2 {
        // `cargo xtask bench --rows`: only those.
        wanted = conf
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("row="))
            .collect();
    }
    for (name, bench) in BENCHES {
        if wanted.is_empty() || wanted.contains(name) {
            report(name, bench(size));
        }
    }
    sys::say("BENCH-DONE");
    if init {
        sys::power_off();
    }
}
