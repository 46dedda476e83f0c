//! `cargo xtask`: the one host tool of RSE OS.
//!
//! ```text
//! cargo xtask build                 build the kernel and the initramfs
//! cargo xtask run [options]         boot in QEMU, console on this terminal
//!     --exec CMD                    run CMD under /bin/sh -c, print its output, exit with its status
//!     --add HOST[:GUEST]            put a file or a whole tree into the initramfs (default /mnt/NAME); repeatable
//!     --pkg NAME                    put a Debian package and its dependencies into the root; repeatable
//!     --accel tcg|kvm  --machine microvm|pc|q35  --smp N  --mem MIB
//!     --append ARGS                 extra kernel command-line words
//!     --net [user]                  a virtio-net NIC on QEMU user networking (DHCP; host loopback only)
//!     --net tap=IF                  the NIC on the existing tap device IF instead (give the guest ip=... with --append)
//!     --forward HOSTPORT:GUESTPORT  forward host 127.0.0.1:HOSTPORT (TCP) to the guest; repeatable, implies --net
//!     --disk FILE                   attach a raw disk image as a virtio-blk disk (/dev/vda, vdb…); repeatable
//!     --log                         show the kernel log on the console too (with --exec)
//!     --icount                      -icount shift=0,sleep=off: guest ns count instructions
//!     --timeout SECS                give up after SECS (with --exec; default 600)
//! cargo xtask cluster --nodes N [options]   N RSE OS VMs on one bridge in a private network namespace
//!     --smp S  --exec CMD  --others CMD  --kill NODE@SECONDS  --revive NODE@SECONDS
//!     --partition NODE@SECONDS[+DURATION]  --timeout SECS  --append ARGS  --accel tcg|kvm
//!                                   node 0's console is this terminal (or runs CMD); logs in target/cluster/
//! cargo xtask test                  host unit tests + boot scenario tests in QEMU
//! cargo xtask image                 a bootable GRUB ISO (target/rse/rse-os.iso)
//! cargo xtask image --disk OUT.img [--size 64M] [--root] [--pkg NAME]... [--dir DIR]
//!                                   an ext4 disk image (mke2fs -d): the initramfs's root (--root;
//!                                   bootable with --append root=/dev/vda), the packages' root and/or DIR
//! cargo xtask soak [SEEDS] [START]  braid simulator soak; prints any failing seed
//! cargo xtask model [KEY=VALUE...] [--minutes M]
//!                                   exhaustive model check of the braid protocol (docs/reliability.md)
//! cargo xtask soak kernel [--minutes M] [--smp N]
//!                                   busybox scripts, rsetest and rsefuzz in a loop while a torus fails every 5 s
//! cargo xtask soak powercut [--cycles N] [--seed S]
//!                                   sqlite3 on ext4, QEMU SIGKILLed N times (default 500); prints the seed
//! cargo xtask bench [--quick] [--runs N] [--accel tcg|kvm] [--only tcg|icount] [--rows NAME,...] [--smp N] [--no-write]
//!                                   RSE OS next to Debian's Linux: same benchmarks, same QEMU flags
//! cargo xtask bench braid [DEPTH] [EVENTS]  braid event-queue throughput per torus
//! cargo xtask fuzz [--calls N] [--seed S] [--smp K] [--workers W]
//!                                   in-guest syscall fuzzer (docs/fuzzing.md); prints the seed
//! ```

mod artifacts;
mod bench;
mod blk_errors;
mod blk_parallel;
mod block_scenarios;
mod braid_bench;
mod braid_cmds;
mod budget_scenarios;
mod cluster;
mod cluster_badinput;
mod cluster_balance;
mod cluster_clock;
mod cluster_faults;
mod cluster_survive;
mod debian;
mod deps;
mod disk_image;
mod dynamic_scenarios;
mod ext4_bulk;
mod ext4_cwd;
mod ext4_page_cache;
mod ext4_powercut;
mod ext4_programs;
mod ext4_rootdisk;
mod ext4_writeback;
mod flood_scenarios;
mod fuzz;
mod http_scenarios;
mod initramfs;
mod kernel_isa;
mod linux_diff;
mod net_scenarios;
mod qemu;
mod robust_scenarios;
mod scenarios;
mod soak_kernel;
mod terminal;
mod trace;
mod tso_scenarios;
mod userland;
mod userland_scenarios;

use std::process::ExitCode;
use std::time::Duration;

use artifacts::Addition;
use qemu::{Accel, Config, Machine};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build().map(|_| 0),
        Some("run") => run(&args[1..]),
        Some("test") => scenarios::test_all(&args[1..]),
        Some("cluster") => cluster::main(&args[1..]),
        Some("image") => image(&args[1..]).map(|_| 0),
        Some("soak") if args.get(1).map(String::as_str) == Some("kernel") => {
            soak_kernel::main(&args[2..])
        }
        Some("soak") if args.get(1).map(String::as_str) == Some("powercut") => {
            ext4_powercut::soak(&args[2..])
        }
        Some("soak") => Ok(braid_cmds::soak(&args[1..])),
        Some("model") => braid_cmds::model(&args[1..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("braid") => {
            Ok(braid_cmds::bench(&args[2..]))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("cluster") => {
            bench::cluster::bench(&args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("apps") => {
            bench::apps::apps(&args[2..])
        }
        Some("bench") => bench::bench(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("trace") => trace::trace(&args[1..]),
        _ => {
            eprintln!("{}", USAGE);
            Ok(2)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(1)
        }
    }
}

pub(crate) const USAGE: &str = "usage: cargo xtask build | run [--exec CMD] [--add HOST[:GUEST]]... [--pkg NAME]... [--accel tcg|kvm] \
[--machine microvm|pc|q35] [--smp N] [--mem MIB] [--append ARGS] [--net [user|tap=IF]] [--forward H:G]... [--disk FILE]... [--log] [--icount] [--timeout SECS] \
| cluster --nodes N [--smp S] [--exec CMD] [--others CMD] [--kill NODE@SECONDS]... [--revive NODE@SECONDS]... [--partition NODE@SECONDS[+DURATION]]... [--timeout SECS] [--append ARGS] | test | image [--disk OUT.img [--size S] [--root] [--pkg NAME]... [--dir DIR]] \
| soak [SEEDS] [START] | soak kernel [--minutes M] [--smp N] | soak powercut [--cycles N] [--seed S] | bench [--quick] [--runs N] [--accel tcg|kvm] [--smp N] [--no-write] \
| bench braid [DEPTH] [EVENTS] | bench cluster [--runs N] [--no-write] | model [tori=N rounds=R crashes=C drops=D delay=T fault_rounds=F k_miss=K procs=P] [--minutes M] | fuzz [--calls N] [--seed S] [--smp K] [--workers W] \
| trace --syscall NR [--skip K] [--rounds R] [RUN OPTIONS] --exec CMD";

fn build() -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    deps::ensure(&[&deps::QEMU, &deps::BUSYBOX])?;
    let kernel = artifacts::build_kernel()?;
    let initrd = artifacts::build_initramfs(None, &[], &[], "initramfs.cpio")?;
    Ok((kernel, initrd))
}

/// Options of `run`.
#[derive(Clone, Debug, Default)]
pub struct RunOpts {
    pub exec: Option<String>,
    pub adds: Vec<Addition>,
    /// Debian packages (`--pkg`), unpacked into the root with their
    /// dependencies.
    pub pkgs: Vec<String>,
    pub accel: Option<Accel>,
    pub machine: Option<Machine>,
    pub smp: Option<u32>,
    pub mem: Option<u32>,
    pub append: Vec<String>,
    pub log: bool,
    pub timeout: Option<u64>,
    /// `-icount shift=0,sleep=off`: guest ns = instructions (profiling).
    pub icount: bool,
    /// `--net`: attach a virtio-net NIC on QEMU user networking.
    pub net: bool,
    /// `--forward HOST:GUEST`: host 127.0.0.1 TCP ports forwarded in.
    pub forwards: Vec<(u16, u16)>,
    /// `--net tap=IF`: the NIC on an existing tap device instead.
    pub tap: Option<String>,
    /// `--disk FILE`: raw images attached as virtio-blk disks.
    pub disks: Vec<std::path::PathBuf>,
    /// QEMU blkdebug rules (a config file) for the first disk: scenarios
    /// that make it fail requests.
    pub disk_errors: Option<std::path::PathBuf>,
}

/// Parses `HOSTPORT:GUESTPORT`.
fn parse_forward(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("--forward {s:?}: expected HOSTPORT:GUESTPORT");
    let (h, g) = s.split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let g: u16 = g.parse().map_err(|_| bad())?;
    if h == 0 || g == 0 {
        return Err(bad());
    }
    Ok((h, g))
}

impl RunOpts {
    fn parse(args: &[String]) -> Result<RunOpts, String> {
        let mut o = RunOpts::default();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            // `--net` takes an optional value: `user` (the default) or
            // `tap=IF`.
            if a == "--net" {
                o.net = true;
                match it.peek().map(|v| v.as_str()) {
                    Some("user") => {
                        it.next();
                    }
                    Some(v) if v.starts_with("tap=") => {
                        let ifname = &v[4..];
                        if ifname.is_empty() || ifname.len() > 15 || ifname.contains(',') {
                            return Err(format!("--net {v}: expected tap=IFNAME"));
                        }
                        o.tap = Some(ifname.to_string());
                        it.next();
                    }
                    _ => {}
                }
                continue;
            }
            let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--exec" => o.exec = Some(val()?),
                "--add" => o.adds.push(Addition::parse(&val()?)?),
                "--pkg" => o.pkgs.push(val()?),
                "--accel" => o.accel = Some(Accel::parse(&val()?)?),
                "--machine" => o.machine = Some(Machine::parse(&val()?)?),
                "--smp" => o.smp = Some(val()?.parse().map_err(|_| "--smp needs a number")?),
                "--mem" => o.mem = Some(val()?.parse().map_err(|_| "--mem needs MiB")?),
                "--append" => o.append.push(val()?),
                "--timeout" => {
                    o.timeout = Some(val()?.parse().map_err(|_| "--timeout needs seconds")?)
                }
                "--forward" => {
                    o.forwards.push(parse_forward(&val()?)?);
                    o.net = true;
                }
                "--disk" => {
                    let d = std::path::PathBuf::from(val()?);
                    if !d.is_file() {
                        return Err(format!("--disk {}: no such file", d.display()));
                    }
                    o.disks.push(d);
                }
                "--log" => o.log = true,
                "--icount" => o.icount = true,
                _ => return Err(format!("unknown option {a}\n{USAGE}")),
            }
        }
        Ok(o)
    }

    /// The QEMU configuration for these options (kernel and initramfs built).
    pub fn config(&self, tag: &str) -> Result<Config, String> {
        deps::ensure(&[&deps::QEMU, &deps::BUSYBOX])?;
        let kernel = artifacts::build_kernel()?;
        // `run` keeps fixed names (the README points at kernel-run.log);
        // test boots add the xtask pid, so two test runs on one checkout
        // cannot swap each other's initramfs or truncate each other's log.
        let tag = if tag == "run" {
            tag.to_string()
        } else {
            format!("{tag}-{}", std::process::id())
        };
        let initrd = artifacts::build_initramfs(
            self.exec.as_deref(),
            &self.adds,
            &self.pkgs,
            &format!("initramfs-{tag}.cpio"),
        )?;
        let mut cfg = Config::new(
            &kernel,
            &artifacts::out_dir().join(format!("kernel-{tag}.log")),
        );
        cfg.initrd = Some(initrd);
        if let Some(a) = self.accel {
            cfg.accel = a;
        }
        if let Some(m) = self.machine {
            cfg.machine = m;
        }
        if let Some(s) = self.smp {
            cfg.smp = s;
        }
        if let Some(m) = self.mem {
            cfg.mem_mib = m;
        }
        cfg.icount = self.icount;
        if let Some(ifname) = &self.tap {
            if !self.forwards.is_empty() {
                return Err("--forward works with user networking, not --net tap=IF".into());
            }
            cfg.net = Some(qemu::Net::Tap {
                ifname: ifname.clone(),
                mac: None,
            });
        } else if self.net {
            cfg.net = Some(qemu::Net::User(self.forwards.clone()));
        }
        cfg.disks = self.disks.clone();
        cfg.disk_errors = self.disk_errors.clone();
        let mut words = self.append.clone();
        if self.exec.is_some() {
            words.push("exec".into());
            if !self.log {
                words.push("quiet".into());
            }
        }
        cfg.append = words.join(" ");
        Ok(cfg)
    }
}

fn run(args: &[String]) -> Result<i32, String> {
    let opts = RunOpts::parse(args)?;
    let cfg = opts.config("run")?;
    if opts.exec.is_none() {
        eprintln!(
            "xtask: booting RSE OS ({:?}, {:?}); kernel log also in {}",
            cfg.machine,
            cfg.accel,
            cfg.log.display()
        );
        return qemu::run_interactive(&cfg).map_err(|e| format!("qemu: {e}"));
    }
    let out = qemu::run_captured(&cfg, Duration::from_secs(opts.timeout.unwrap_or(600)), true)
        .map_err(|e| format!("qemu: {e}"))?;
    if out.timed_out {
        return Err("timed out".into());
    }
    match out.guest_status() {
        Some(s) => {
            if s != 0 && !opts.log {
                // What the shell cannot say: why the kernel refused to run
                // a program (e.g. a dynamically linked one, ENOEXEC).
                for l in out.log.lines() {
                    if let Some((_, msg)) = l.split_once("] exec ") {
                        eprintln!("xtask: kernel: exec {msg}");
                    }
                }
            }
            Ok(s)
        }
        None => Err(format!(
            "the guest did not report an exit status (QEMU status {:?}); kernel log:\n{}",
            out.qemu_status,
            out.log
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

fn image(args: &[String]) -> Result<(), String> {
    if let Some(disk) = disk_image::DiskOpts::parse(args)? {
        let out = disk_image::make(&disk)?;
        println!("{}", out.display());
        return Ok(());
    }
    let (kernel, initrd) = build()?;
    let iso = artifacts::build_iso(&kernel, Some(&initrd), "", "rse-os.iso")?;
    println!("{}", iso.display());
    Ok(())
}
