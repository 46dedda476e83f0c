//! `cargo xtask bench`: the side-by-side benchmarks. The same static
//! `rsebench` binary boots as init (`rdinit=`) from the same initramfs on
//! RSE OS and on Debian's Linux kernel, under identical QEMU flags; each
//! boot runs every benchmark once; medians over the boots go in a table
//! (stdout, docs/benchmarks.md and the README). The storage rows
//! (`disk_*`) need a disk and a root with sqlite3: a second boot per run
//! gives them one (`disk`).
//!
//! Under TCG two modes run: plain (wall-clock guest time, noisy) and
//! `-icount shift=0,sleep=off` (guest time counts instructions: 1 ns = 1
//! instruction, deterministic). `--accel kvm` runs the KVM mode instead.

pub mod apps;
pub mod cluster;
mod disk;
pub mod linux;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::qemu::{self, Accel, Config, Machine};
use crate::{artifacts, deps};

const USAGE: &str = "usage: cargo xtask bench [--quick] [--runs N] [--accel tcg|kvm] [--smp N] \
                     [--only tcg|icount] [--rows PREFIX[,PREFIX…]] [--no-write]";

/// One result of one benchmark in one boot.
#[derive(Clone, Debug)]
pub enum Value {
    Num { value: f64, unit: String },
    Missing(String),
}

/// What one boot produced.
#[derive(Default)]
pub struct Sample {
    /// In the order the guest printed them.
    pub values: Vec<(String, Value)>,
    /// QEMU start → init's first line, wall clock.
    pub wall_to_init: Option<Duration>,
}

/// A kernel under test.
struct System {
    name: &'static str,
    kernel: PathBuf,
    /// The command line without `rdinit=`, which each kind of boot sets.
    append: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Tcg,
    TcgIcount,
    Kvm,
}

impl Mode {
    pub fn title(self) -> &'static str {
        match self {
            Mode::Tcg => "TCG, wall-clock guest time",
            Mode::TcgIcount => "TCG -icount shift=0,sleep=off, -smp 1 (1 ns = 1 guest instruction)",
            Mode::Kvm => "KVM",
        }
    }
}

struct Options {
    quick: bool,
    runs: usize,
    accel: Accel,
    smp: u32,
    write: bool,
    /// Only this TCG mode (`--only`).
    only: Option<Mode>,
    /// Only the rows whose names start with one of these (`--rows`).
    rows: Vec<String>,
}

impl Options {
    /// Whether a row name `name` is asked for.
    fn wants(&self, name: &str) -> bool {
        self.rows.is_empty() || self.rows.iter().any(|r| name.starts_with(r.as_str()))
    }

    /// The boot without a disk runs the other rows: needed unless every
    /// prefix can only name a storage row.
    fn main_boot(&self) -> bool {
        self.rows.is_empty() || self.rows.iter().any(|r| !r.starts_with("disk"))
    }

    /// The storage boot: needed if some prefix can name a `disk_` row.
    fn disk_boot(&self) -> bool {
        self.wants("disk_") || self.rows.iter().any(|r| r.starts_with("disk_"))
    }

    /// Under `-icount shift=0,sleep=off` the storage rows measure no
    /// kernel: a guest waiting idle for an interrupt (Linux, for every
    /// disk request) has its clock jumped to its next timer, so an fsync
    /// "took" 4 s there, while RSE OS, which polls, counts its polling
    /// loop. They run in that mode only when `--rows` asks by name.
    fn disk_boot_in(&self, mode: Mode) -> bool {
        mode != Mode::TcgIcount || !self.rows.is_empty()
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        runs: 5,
        accel: Accel::detect(),
        smp: 2,
        write: true,
        only: None,
        rows: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => o.quick = true,
            "--runs" => o.runs = val()?.parse().map_err(|_| "--runs needs a number")?,
            "--accel" => o.accel = Accel::parse(&val()?)?,
            "--smp" => o.smp = val()?.parse().map_err(|_| "--smp needs a number")?,
            "--no-write" => o.write = false,
            "--rows" => {
                o.rows.extend(
                    val()?
                        .split(',')
                        .filter(|r| !r.is_empty())
                        .map(str::to_string),
                );
                o.write = false;
            }
            "--only" => {
                o.only = Some(match val()?.as_str() {
                    "tcg" => Mode::Tcg,
                    "icount" => Mode::TcgIcount,
                    other => return Err(format!("--only {other}: tcg or icount")),
                });
                o.write = false;
            }
            _ => return Err(format!("unknown option {a}\n{USAGE}")),
        }
    }
    if o.quick {
        o.runs = 1;
        o.write = false;
    }
    o.runs = o.runs.max(1);
    Ok(o)
}

pub fn bench(args: &[String]) -> Result<i32, String> {
    let opts = parse(args)?;
    deps::ensure(&[&deps::QEMU, &deps::BUSYBOX, &deps::E2FSPROGS])?;
    let (vmlinuz, linux_version) = linux::kernel()?;
    let rse = artifacts::build_kernel()?;
    let initrd = if opts.main_boot() {
        Some(initramfs(opts.quick, &opts.rows)?)
    } else {
        None
    };
    let systems = [
        System {
            name: "Linux",
            kernel: vmlinuz,
            append: "console=ttyS0 quiet loglevel=0 panic=-1",
        },
        System {
            name: "RSE OS",
            kernel: rse,
            append: "quiet",
        },
    ];
    let modes: Vec<Mode> = match (opts.accel, opts.only, opts.quick) {
        (Accel::Kvm, _, _) => vec![Mode::Kvm],
        (Accel::Tcg, Some(m), _) => vec![m],
        (Accel::Tcg, None, true) => vec![Mode::Tcg],
        (Accel::Tcg, None, false) => vec![Mode::Tcg, Mode::TcgIcount],
    };
    let disk = if opts.disk_boot() && modes.iter().any(|&m| opts.disk_boot_in(m)) {
        Some(disk::prepare(opts.quick, &opts.rows, &linux_version)?)
    } else {
        None
    };
    let mut tables = Vec::new();
    let mut failures = Vec::new();
    for &mode in &modes {
        let mut samples: [Vec<Sample>; 2] = Default::default();
        for run in 0..opts.runs {
            // Alternate the systems so slow drifts of the host hit both.
            for (i, sys) in systems.iter().enumerate() {
                eprintln!(
                    "bench: {} run {}/{} on {}",
                    mode.title(),
                    run + 1,
                    opts.runs,
                    sys.name
                );
                let mut sample = Sample::default();
                if let Some(initrd) = &initrd {
                    let b = Boot {
                        initrd,
                        init: "/usr/bin/rsebench",
                        disk: None,
                    };
                    match boot(sys, &b, mode, &opts) {
                        Ok(s) => sample = s,
                        Err(e) => failures.push(format!("{} ({}): {e}", sys.name, mode.title())),
                    }
                }
                if let Some(d) = disk.as_ref().filter(|_| opts.disk_boot_in(mode)) {
                    let initrd = if i == 0 {
                        &d.linux_initrd
                    } else {
                        &d.rse_initrd
                    };
                    let r = d.fresh_image(&format!("{i}-{run}")).and_then(|img| {
                        let b = Boot {
                            initrd,
                            init: disk::INIT_PATH,
                            disk: Some(&img),
                        };
                        let r = boot(sys, &b, mode, &opts);
                        let _ = std::fs::remove_file(&img);
                        r
                    });
                    match r {
                        // Its boot_wall would count the mount script.
                        Ok(s) => sample.values.extend(s.values),
                        Err(e) => failures.push(format!(
                            "{} ({}, storage boot): {e}",
                            sys.name,
                            mode.title()
                        )),
                    }
                }
                samples[i].push(sample);
            }
        }
        let [linux, rse] = samples;
        let mut table = report::table(mode, &linux, &rse);
        if opts.disk_boot() && !opts.disk_boot_in(mode) {
            table += report::NO_DISK_UNDER_ICOUNT;
        }
        tables.push(table);
    }
    if let Some(initrd) = &initrd {
        let _ = std::fs::remove_file(initrd);
    }
    if let Some(d) = &disk {
        d.remove();
    }
    let header = report::header(&opts_text(&opts), &linux_version, opts.runs);
    let text = format!("{header}\n{}", tables.join("\n"));
    println!("{text}");
    if opts.write {
        report::write_files(&text)?;
    }
    if failures.is_empty() {
        Ok(0)
    } else {
        Err(format!("some boots failed:\n{}", failures.join("\n")))
    }
}

fn opts_text(o: &Options) -> String {
    format!(
        "qemu-system-x86_64 -M pc -cpu max -smp {} -m 1024M{}",
        o.smp,
        if o.accel == Accel::Kvm {
            " -accel kvm"
        } else {
            " -accel tcg"
        }
    )
}

/// The initramfs: the usual one plus `rsebench` and its size setting.
fn initramfs(quick: bool, rows: &[String]) -> Result<PathBuf, String> {
    let conf = artifacts::out_dir().join(format!("bench-{}.conf", std::process::id()));
    let mut text = String::from(if quick { "quick\n" } else { "full\n" });
    if !rows.is_empty() {
        text += &format!("rows {}\n", rows.join(" "));
    }
    std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
    let mut adds: Vec<artifacts::Addition> = crate::userland::build_user_programs()?
        .into_iter()
        .map(|(host, guest)| artifacts::Addition { host, guest })
        .collect();
    adds.push(artifacts::Addition {
        host: conf,
        guest: "/etc/rse/bench.conf".into(),
    });
    artifacts::build_initramfs(
        None,
        &adds,
        &[],
        &format!("initramfs-bench-{}.cpio", std::process::id()),
    )
}

/// One boot's root, init and disk.
struct Boot<'a> {
    initrd: &'a Path,
    init: &'a str,
    disk: Option<&'a Path>,
}

fn boot(sys: &System, b: &Boot, mode: Mode, o: &Options) -> Result<Sample, String> {
    let log = artifacts::out_dir().join(format!("kernel-bench-{}.log", std::process::id()));
    let mut cfg = Config::new(&sys.kernel, &log);
    cfg.machine = Machine::Pc;
    cfg.accel = if mode == Mode::Kvm {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    cfg.icount = mode == Mode::TcgIcount;
    // Under -icount Linux 6.1 hangs bringing up a second CPU, so that
    // mode runs both systems on one.
    cfg.smp = if mode == Mode::TcgIcount { 1 } else { o.smp };
    cfg.mem_mib = 1024;
    cfg.initrd = Some(b.initrd.to_path_buf());
    cfg.append = format!("{} rdinit={}", sys.append, b.init);
    cfg.disks = b.disk.map(Path::to_path_buf).into_iter().collect();
    cfg.ready_mark = "BENCH-START".into();
    let out = qemu::run_captured(&cfg, Duration::from_secs(1800), false)
        .map_err(|e| format!("qemu: {e}"))?;
    let _ = std::fs::remove_file(&log);
    let console = out.console_str();
    let sample = parse_console(&console, out.ready_wall);
    // What the guest says about a row beside its result (e.g. disk
    // traffic per operation), for whoever reads the run.
    for note in console
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NOTE "))
    {
        eprintln!("bench: {}: {note}", sys.name);
    }
    if !console.contains("BENCH-DONE") {
        let tail: Vec<&str> = console.lines().rev().take(20).collect();
        return Err(format!(
            "no BENCH-DONE (QEMU status {:?}, timed out {}); console ends:\n{}",
            out.qemu_status,
            out.timed_out,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(sample)
}

/// `BENCH name value unit` / `BENCH name n/a why` lines.
fn parse_console(console: &str, wall: Option<Duration>) -> Sample {
    let mut s = Sample {
        wall_to_init: wall,
        ..Default::default()
    };
    for line in console.lines().map(str::trim) {
        let mut w = line.splitn(4, ' ');
        if w.next() != Some("BENCH") {
            continue;
        }
        let (Some(name), Some(v)) = (w.next(), w.next()) else {
            continue;
        };
        let rest = w.next().unwrap_or("").to_string();
        let value = match v.parse::<f64>() {
            Ok(value) => Value::Num { value, unit: rest },
            Err(_) => Value::Missing(rest),
        };
        s.values.push((name.to_string(), value));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_gaps() {
        let s = parse_console(
            "noise\r\nBENCH null_syscall 120.5 ns\r\nBENCH ring n/a io_uring_setup errno 38\nBENCH-DONE\n",
            None,
        );
        assert_eq!(s.values[0].0, "null_syscall");
        assert!(
            matches!(&s.values[0].1, Value::Num { value, unit } if *value == 120.5 && unit == "ns")
        );
        assert!(matches!(&s.values[1].1, Value::Missing(w) if w.contains("errno 38")));
        assert_eq!(s.values.len(), 2);
    }

    #[test]
    fn rows_choose_the_boots() {
        let boots = |args: &[&str]| {
            let o = parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>()).unwrap();
            (o.main_boot(), o.disk_boot())
        };
        assert_eq!(boots(&[]), (true, true));
        assert_eq!(boots(&["--rows", "disk"]), (false, true));
        assert_eq!(boots(&["--rows", "disk_fsync_4k"]), (false, true));
        assert_eq!(boots(&["--rows", "null_syscall"]), (true, false));
        assert_eq!(boots(&["--rows", "pipe,disk_seq"]), (true, true));
        assert_eq!(boots(&["--rows", "d"]), (true, true));
        assert!(
            !parse(&["--rows".to_string(), "disk".to_string()])
                .unwrap()
                .write
        );
    }
}
