//! `cargo xtask test`: host unit tests, then boot scenarios in QEMU.
//!
//! Every scenario boots the real kernel and checks what it did through
//! its console, its log and QEMU's exit status; nothing is mocked.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::qemu::{self, Config, Machine, Outcome};
use crate::terminal::Terminal;
use crate::{artifacts, deps, RunOpts};

type Scenario = (&'static str, fn() -> Result<(), String>);

const SCENARIOS: &[Scenario] = &[
    ("selftests_microvm", selftests_microvm),
    ("selftests_pc", selftests_pc),
    (
        "unexpected_exception_exits_with_report",
        unexpected_exception,
    ),
    ("kernel_stack_overflow_reported", stack_overflow),
    ("truncated_initramfs_reported", truncated_initramfs),
    (
        "kernel_fpu_instructions",
        crate::kernel_isa::kernel_fpu_instructions,
    ),
    ("grub_iso_boots_multiboot2", grub_iso),
    ("smp_1_cpu_online_microvm", || boot_smp(1, Machine::Microvm)),
    ("smp_3_cpus_online_microvm", || {
        boot_smp(3, Machine::Microvm)
    }),
    ("smp_8_cpus_online_pc", || boot_smp(8, Machine::Pc)),
    ("interactive_shell_ls_and_ctrl_c", interactive_shell),
    (
        "dynamic_elf_debian_programs",
        crate::dynamic_scenarios::host_programs,
    ),
    ("bench_quick_suite_runs", bench_quick),
    (
        "icount_budget_ctxsw_pipe_pinned",
        crate::budget_scenarios::pipe_switch,
    ),
    (
        "icount_budget_null_syscall",
        crate::budget_scenarios::null_syscall,
    ),
    ("bench_apps_quick_lighttpd_both_kernels", bench_apps_quick),
    (
        "bench_apps_quick_tap_lighttpd_both_kernels",
        bench_apps_quick_tap,
    ),
    ("debian_pkg_sqlite3_root", debian_pkg_root),
    ("debian_sqlite3_concurrent_writers", sqlite3_concurrent),
    // One boot per kernel for all of them (the first one boots).
    ("linux_diff_sqlite3", crate::linux_diff::sqlite3),
    ("linux_diff_python3", crate::linux_diff::python3),
    ("linux_diff_perl", crate::linux_diff::perl),
    ("linux_diff_coreutils", crate::linux_diff::coreutils),
    ("linux_diff_bash", crate::linux_diff::bash),
    ("linux_diff_netlink", crate::linux_diff::netlink),
    ("linux_diff_lighttpd", crate::linux_diff::lighttpd),
    ("add_host_tree", add_host_tree),
    ("blk_dd_pattern_microvm", || {
        crate::block_scenarios::dd_pattern(Machine::Microvm)
    }),
    ("blk_dd_pattern_pc", || {
        crate::block_scenarios::dd_pattern(Machine::Pc)
    }),
    ("blk_disk_parallel_pc", || {
        crate::blk_parallel::disk_parallel(Machine::Pc, 1)
    }),
    ("blk_disk_parallel_microvm", || {
        crate::blk_parallel::disk_parallel(Machine::Microvm, 3)
    }),
    (
        "ext4_read_host_tree",
        crate::block_scenarios::ext4_read_tree,
    ),
    (
        "ext4_write_e2fsck_debugfs",
        crate::block_scenarios::ext4_write_tree,
    ),
    (
        "ext4_rm_r_large_directory",
        crate::block_scenarios::ext4_rm_r_large_directory,
    ),
    (
        "ext4_rename_htree_split",
        crate::block_scenarios::ext4_rename_htree_split,
    ),
    ("ext4_relatime", crate::block_scenarios::ext4_relatime),
    ("blk_io_errors_eio", crate::blk_errors::blk_io_errors_eio),
    (
        "ext4_bulk_tree_debugfs",
        crate::ext4_bulk::ext4_bulk_tree_debugfs,
    ),
    (
        "ext4_sync_journal_replay",
        crate::block_scenarios::ext4_sync_replay,
    ),
    (
        "ext4_sqlite_reboot",
        crate::ext4_programs::ext4_sqlite_reboot,
    ),
    (
        "ext4_sqlite_power_cut",
        crate::ext4_powercut::ext4_sqlite_power_cut,
    ),
    (
        "ext4_rsetest_locks_mmap",
        crate::ext4_programs::ext4_rsetest_locks_mmap,
    ),
    (
        "ext4_page_cache_coherent",
        crate::ext4_page_cache::ext4_page_cache_coherent,
    ),
    (
        "ext4_page_cache_reclaim",
        crate::ext4_page_cache::ext4_page_cache_reclaim,
    ),
    (
        "ext4_writeback_coherent",
        crate::ext4_writeback::ext4_writeback_coherent,
    ),
    (
        "ext4_writeback_power_cut",
        crate::ext4_writeback::ext4_writeback_power_cut,
    ),
    ("ext4_cwd_in_mount", crate::ext4_cwd::ext4_cwd_in_mount),
    ("ext4_root_on_disk", crate::ext4_rootdisk::ext4_root_on_disk),
    (
        "ext4_corrupt_images_no_panic",
        crate::block_scenarios::ext4_corrupt_images,
    ),
    ("net_dhcp_tcp_echo_microvm", || {
        crate::net_scenarios::dhcp_and_tcp_echo(Machine::Microvm)
    }),
    ("net_dhcp_tcp_echo_pc", || {
        crate::net_scenarios::dhcp_and_tcp_echo(Machine::Pc)
    }),
    ("net_arp_icmp_echo", crate::net_scenarios::arp_and_icmp_echo),
    ("net_ip_netlink", crate::net_scenarios::ip_netlink),
    (
        "net_inet_rsetest_and_nc",
        crate::net_scenarios::inet_nc_both_ways,
    ),
    (
        "net_lighttpd_serves_host",
        crate::http_scenarios::lighttpd_serves_host,
    ),
    (
        "net_lighttpd_abuse_churn_aborts_wget",
        crate::robust_scenarios::lighttpd_abuse,
    ),
    (
        "net_tap_syn_flood_malformed_frames",
        crate::flood_scenarios::syn_flood,
    ),
    ("net_tap_tso_bulk_both_ways", crate::tso_scenarios::tso_bulk),
    (
        "net_python_http_server_serves_host",
        crate::http_scenarios::python_http_server,
    ),
    ("kernel_soak_short", crate::soak_kernel::short_scenario),
    (
        "cluster_2_nodes_udp_ping",
        crate::cluster::udp_ping_scenario,
    ),
    (
        "cluster_2_nodes_process_moves_and_back",
        crate::cluster::migrate_scenario,
    ),
    (
        "cluster_3_nodes_braid_lists_all_tori",
        crate::cluster::braid_scenario,
    ),
    (
        "cluster_3_nodes_kill_detected",
        crate::cluster::kill_scenario,
    ),
    (
        "cluster_3_nodes_revive_partition_rejoin",
        crate::cluster::revive_partition_scenario,
    ),
    (
        "cluster_3_nodes_moved_jobs_survive_kill",
        crate::cluster_survive::kill_scenario,
    ),
    (
        "cluster_3_nodes_partition_no_job_runs_twice",
        crate::cluster_survive::partition_scenario,
    ),
    (
        "cluster_3_nodes_move_between_remotes",
        crate::cluster_survive::between_remotes_scenario,
    ),
    (
        "cluster_3_nodes_bad_frames_refused",
        crate::cluster_badinput::scenario,
    ),
    (
        "cluster_3_nodes_clock_follows_moves",
        crate::cluster_clock::scenario,
    ),
    (
        "cluster_3_nodes_load_spreads",
        crate::cluster_balance::scenario,
    ),
    (
        "net_loopback_httpd_wget",
        crate::net_scenarios::loopback_httpd_wget,
    ),
    (
        "net_loopback_churn_sockstat",
        crate::net_scenarios::loopback_churn_sockstat,
    ),
];

/// Runs everything; `args` may name scenarios to run only those.
pub fn test_all(args: &[String]) -> Result<i32, String> {
    let only: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if only.is_empty() {
        eprintln!("== host unit tests");
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(artifacts::root())
            .args(["test", "--quiet"])
            .status()
            .map_err(|e| format!("cargo test: {e}"))?;
        if !st.success() {
            return Err("host unit tests failed".into());
        }
        // The vendored rsext4's own tests of our patches (not a workspace
        // member): renames in HTree directories, many runs written in
        // one call, a directory whose extent tree grows, a disk filled
        // until NoSpace, on images made by mkfs.ext4, checked by e2fsck.
        deps::ensure(&[&deps::E2FSPROGS])?;
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(artifacts::root())
            .args(["test", "--quiet", "--release", "--manifest-path"])
            .arg("crates/rsext4/Cargo.toml")
            .args(["--test", "htree_rename", "--test", "write_runs"])
            .args(["--test", "dir_blocks", "--test", "enospc", "--target-dir"])
            .arg(artifacts::root().join("target/rsext4"))
            .status()
            .map_err(|e| format!("cargo test (rsext4): {e}"))?;
        if !st.success() {
            return Err("rsext4's host tests failed".into());
        }
    }
    deps::ensure(&[&deps::QEMU, &deps::BUSYBOX, &deps::SCRIPT])?;
    eprintln!("== boot scenarios (QEMU, {:?})", qemu::Accel::detect());
    let mut failed = Vec::new();
    for (name, f) in SCENARIOS
        .iter()
        .filter(|(n, _)| only.is_empty() || only.iter().any(|o| n.contains(o.as_str())))
    {
        let t = Instant::now();
        match f() {
            Ok(()) => eprintln!("scenario {name} ... ok ({:.1}s)", t.elapsed().as_secs_f64()),
            Err(e) => {
                eprintln!(
                    "scenario {name} ... FAILED ({:.1}s)\n{e}",
                    t.elapsed().as_secs_f64()
                );
                failed.push(name.to_string());
            }
        }
    }
    eprintln!("== userland scenarios (busybox and rsetest under RSE OS)");
    let adds: Vec<artifacts::Addition> = crate::userland::build_user_programs()?
        .into_iter()
        .map(|(host, guest)| artifacts::Addition { host, guest })
        .collect();
    // The default machine (3 CPUs), then the busybox scripts again on one
    // CPU, on eight, and on one CPU hosting three tori (with the
    // scheduling checks that make sense there).
    type Run = (
        String,
        crate::userland_scenarios::UserScenario,
        Option<u32>,
        &'static str,
    );
    let mut runs: Vec<Run> = crate::userland_scenarios::scenarios()
        .into_iter()
        .map(|s| (s.0.to_string(), s, None, ""))
        .collect();
    for smp in [1, 8] {
        for s in crate::userland_scenarios::script_scenarios() {
            runs.push((format!("{}_smp{smp}", s.0), s, Some(smp), ""));
        }
        let s = crate::userland_scenarios::robustness_scenario();
        runs.push((format!("{}_smp{smp}", s.0), s, Some(smp), ""));
    }
    for (s, append) in crate::userland_scenarios::injected_scenarios() {
        runs.push((s.0.to_string(), s, None, append));
    }
    for s in crate::userland_scenarios::one_cpu_three_tori_scenarios() {
        runs.push((format!("{}_1cpu_3tori", s.0), s, Some(1), "tori=3"));
    }
    for (name, (_, f), smp, append) in runs
        .into_iter()
        .filter(|(n, ..)| only.is_empty() || only.iter().any(|o| n.contains(o.as_str())))
    {
        let adds = adds.clone();
        let exec = move |cmd: &str| -> Result<(String, i32), String> {
            exec_in_guest(cmd, &adds, smp, append)
        };
        let t = Instant::now();
        match f(&exec) {
            Ok(()) => eprintln!("scenario {name} ... ok ({:.1}s)", t.elapsed().as_secs_f64()),
            Err(e) => {
                eprintln!(
                    "scenario {name} ... FAILED ({:.1}s)\n{e}",
                    t.elapsed().as_secs_f64()
                );
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        eprintln!("all scenarios passed");
        Ok(0)
    } else {
        Err(format!("failed scenarios: {}", failed.join(", ")))
    }
}

/// Runs `cmd` in a fresh boot exactly as `cargo xtask run --exec` does and
/// returns its output and exit status.
pub(crate) fn exec_in_guest(
    cmd: &str,
    adds: &[artifacts::Addition],
    smp: Option<u32>,
    append: &str,
) -> Result<(String, i32), String> {
    // The all-in-one rsetest boot runs ~60 programs; on a loaded 2-core
    // host it passed 300 s.
    exec_in_guest_for(cmd, adds, smp, append, Duration::from_secs(600))
}

/// [`exec_in_guest`] with a time limit of its own.
pub(crate) fn exec_in_guest_for(
    cmd: &str,
    adds: &[artifacts::Addition],
    smp: Option<u32>,
    append: &str,
    limit: Duration,
) -> Result<(String, i32), String> {
    let opts = RunOpts {
        exec: Some(cmd.to_string()),
        adds: adds.to_vec(),
        smp,
        append: append.split_whitespace().map(String::from).collect(),
        ..Default::default()
    };
    let cfg = opts.config("scenario")?;
    let out = boot(&cfg, limit.as_secs())?;
    if out.timed_out {
        return Err(explain(&out, "timed out"));
    }
    match out.guest_status() {
        Some(st) => Ok((out.console_str(), st)),
        None => Err(explain(
            &out,
            "the guest reported no exit status (kernel failure?)",
        )),
    }
}

pub(crate) fn boot(cfg: &Config, secs: u64) -> Result<Outcome, String> {
    let out =
        qemu::run_captured(cfg, Duration::from_secs(secs), false).map_err(|e| format!("qemu: {e}"));
    // Per-run scratch files (RunOpts::config names them by pid); the
    // outcome holds the log's text.
    let _ = std::fs::remove_file(&cfg.log);
    if let Some(i) = &cfg.initrd {
        let _ = std::fs::remove_file(i);
    }
    out
}

fn config(tag: &str, append: &str, machine: Machine) -> Result<Config, String> {
    let opts = RunOpts {
        append: vec![append.to_string()],
        machine: Some(machine),
        ..Default::default()
    };
    opts.config(tag)
}

pub(crate) fn explain(out: &Outcome, what: &str) -> String {
    format!(
        "{what}\nQEMU status {:?}, timed out {}\n--- kernel log ---\n{}\n--- console ---\n{}",
        out.qemu_status,
        out.timed_out,
        out.log,
        out.console_str()
    )
}

/// Prints the boot time: guest µs at the ready line, and the wall time
/// from starting QEMU until the console showed it.
fn report_boot_time(label: &str, out: &Outcome) {
    let guest = out
        .log
        .lines()
        .find(|l| l.contains("RSE OS ready"))
        .and_then(|l| l.split(" us]").next())
        .map(|s| s.trim_start_matches('[').trim().to_string());
    eprintln!(
        "  boot ({label}): kernel entry -> ready {} us guest time; QEMU start -> ready {} ms wall",
        guest.unwrap_or_else(|| "?".into()),
        out.ready_wall
            .map(|d| d.as_millis().to_string())
            .unwrap_or_else(|| "?".into())
    );
}

fn expect_selftests_pass(out: &Outcome) -> Result<(), String> {
    if !out.kernel_ok()
        || !out.log.contains("RSE OS ready")
        || !out.log.contains(" passed, 0 failed")
        || out.log.contains("FAILED")
    {
        return Err(explain(out, "self tests did not all pass"));
    }
    Ok(())
}

fn selftests_microvm() -> Result<(), String> {
    let out = boot(
        &config("selftest-microvm", "selftest=all", Machine::Microvm)?,
        120,
    )?;
    report_boot_time("microvm", &out);
    expect_selftests_pass(&out)
}

fn selftests_pc() -> Result<(), String> {
    let out = boot(&config("selftest-pc", "selftest=all", Machine::Pc)?, 120)?;
    report_boot_time("pc", &out);
    expect_selftests_pass(&out)
}

/// An exception nobody expects must be reported (vector, RIP, CR2) and end
/// the run with the failure status, not hang or triple-fault.
fn unexpected_exception() -> Result<(), String> {
    let out = boot(&config("crash", "selftest=crash", Machine::Microvm)?, 60)?;
    let text = out.console_str();
    if out.qemu_status != Some(3)
        || !text.contains("EXCEPTION #PF")
        || !text.contains("cr2=0xffff9000dead0000")
        || !text.contains("rip=0xffffffff8")
    {
        return Err(explain(
            &out,
            "expected an EXCEPTION #PF report and QEMU status 3",
        ));
    }
    Ok(())
}

/// A kernel stack overflow runs into the guard page under the stack and
/// is reported, naming the stack, with the failure status: a task's
/// kernel stack (from the heap) and the boot stack (in .bss). Without the
/// guard pages the recursion silently overwrites the memory below and the
/// run ends some other way.
fn stack_overflow() -> Result<(), String> {
    for (arg, expect) in [
        (
            "overflow_task",
            "KERNEL STACK OVERFLOW in the kernel stack of the task running on CPU 0",
        ),
        ("overflow_boot", "KERNEL STACK OVERFLOW in the boot stack"),
    ] {
        let out = boot(
            &config(arg, &format!("selftest={arg}"), Machine::Microvm)?,
            60,
        )?;
        let text = out.console_str();
        if out.qemu_status != Some(3)
            || !text.contains(expect)
            || !text.contains("EXCEPTION #PF")
            || out.log.contains("FAILED")
        {
            return Err(explain(
                &out,
                &format!("selftest={arg}: expected \"{expect}\" and QEMU status 3"),
            ));
        }
    }
    Ok(())
}

/// A truncated initramfs is reported, not a panic: the kernel says why
/// the root is incomplete, init cannot start, and with `exec` QEMU ends
/// with status 127. (Before, the tmpfs was never installed and the first
/// path lookup panicked.)
fn truncated_initramfs() -> Result<(), String> {
    let cfg = config("badcpio", "exec", Machine::Microvm)?;
    let initrd = cfg.initrd.as_ref().ok_or("no initramfs")?;
    let len = std::fs::metadata(initrd).map_err(|e| e.to_string())?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(initrd)
        .and_then(|f| f.set_len(len * 3 / 5))
        .map_err(|e| format!("truncating {}: {e}", initrd.display()))?;
    let out = boot(&cfg, 120)?;
    if out.log.contains("KERNEL PANIC") || !out.log.contains("initramfs unpack failed") {
        return Err(explain(&out, "the truncated initramfs was not reported"));
    }
    if !out.log.contains("init exited: status=127") {
        return Err(explain(&out, "init did not fail to start with status 127"));
    }
    Ok(())
}

/// The GRUB ISO (Multiboot2) boots to the same ready line and passes the
/// same self tests as `-kernel` (PVH).
fn grub_iso() -> Result<(), String> {
    let mut cfg = config("iso", "", Machine::Pc)?;
    let kernel = cfg.kernel.take().ok_or("no kernel")?;
    let iso = artifacts::build_iso(
        &kernel,
        cfg.initrd.as_deref(),
        "selftest=all",
        "rse-os-selftest.iso",
    )?;
    cfg.cdrom = Some(iso);
    if let Some(i) = cfg.initrd.take() {
        let _ = std::fs::remove_file(i);
    }
    let out = boot(&cfg, 180)?;
    report_boot_time("pc, GRUB ISO", &out);
    if !out.log.contains("entered via Multiboot2") {
        return Err(explain(&out, "the ISO did not enter through Multiboot2"));
    }
    expect_selftests_pass(&out)
}

/// `-smp N`: the kernel brings up all N CPUs (parked; processes still run
/// on CPU 0 only) and says so in its log, and a command still runs through
/// the usual `--exec` path.
fn boot_smp(n: u32, machine: Machine) -> Result<(), String> {
    let opts = RunOpts {
        exec: Some("echo alive".into()),
        machine: Some(machine),
        smp: Some(n),
        ..Default::default()
    };
    let out = boot(&opts.config(&format!("smp{n}"))?, 180)?;
    let want = format!("boot: {n} CPUs online");
    if out.timed_out
        || out.guest_status() != Some(0)
        || !out.console_str().contains("alive")
        || !out.log.contains(&want)
    {
        return Err(explain(&out, &format!("expected `{want}` and `alive`")));
    }
    if let Some(line) = out.log.lines().find(|l| l.contains(&want)) {
        eprintln!("  {}", line.trim());
    }
    Ok(())
}

/// `cargo xtask run` on a real (pseudo) terminal: the prompt comes up,
/// `ls /` lists the root, and Ctrl-C ends a foreground `sleep 100` the way
/// it does on Linux (status 130, back at the prompt), with QEMU itself
/// unharmed: leaving the shell still ends the run in the orderly way.
fn interactive_shell() -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut t = Terminal::spawn(&me.display().to_string(), &["run"])?;
    let prompt = "/ # ";
    t.expect(prompt, Duration::from_secs(120))?;
    t.type_keys(b"ls /\r")?;
    let listing = t.expect(prompt, Duration::from_secs(30))?;
    for dir in ["bin", "dev", "etc", "proc", "tmp", "usr"] {
        if !listing.split_whitespace().any(|w| w == dir) {
            return Err(format!("`ls /` did not list {dir}:\n{listing}"));
        }
    }
    t.type_keys(b"sleep 100\r")?;
    t.expect("sleep 100", Duration::from_secs(10))?;
    // Let the shell fork and the child block in nanosleep first.
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    t.type_keys(b"\x03")?;
    t.expect("^C", Duration::from_secs(10))?;
    t.expect(prompt, Duration::from_secs(10))?;
    let took = sent.elapsed();
    t.type_keys(b"echo status=$?\r")?;
    t.expect("status=130", Duration::from_secs(10))?;
    t.expect(prompt, Duration::from_secs(10))?;
    t.type_keys(b"exit\r")?;
    // `run` passes on QEMU's status: 1 is the kernel's orderly exit; a QEMU
    // killed by the host's SIGINT would give something else.
    match t.wait(Duration::from_secs(30)) {
        Some(1) => {
            eprintln!("  Ctrl-C -> prompt back in {} ms", took.as_millis());
            Ok(())
        }
        other => Err(format!(
            "after `exit` the run ended with {other:?}, not QEMU's orderly status 1:\n{}",
            t.transcript()
        )),
    }
}

/// `cargo xtask bench apps --quick`: lighttpd on both kernels under a
/// short host wrk load per row and one short in-guest loopback wrk run
/// (the numbers are not checked here; a wrong answer, a failed in-guest
/// wrk or a boot that never serves fails).
fn bench_apps_quick() -> Result<(), String> {
    crate::bench::apps::apps(&["--quick".to_string()]).map(|_| ())
}

/// The same over a tap in a namespace of its own (`--tap`, root): both
/// guests' NICs with their offloads, host wrk inside the namespace.
fn bench_apps_quick_tap() -> Result<(), String> {
    crate::bench::apps::apps(&["--quick".to_string(), "--tap".to_string()]).map(|_| ())
}

/// `cargo xtask bench --quick`: the benchmark suite boots both kernels and
/// every benchmark reports on both (the numbers are not checked here).
fn bench_quick() -> Result<(), String> {
    crate::bench::bench(&["--quick".to_string()]).map(|_| ())
}

/// Runs `opts` (with `exec` set) in a fresh boot: console output and the
/// guest command's status.
pub(crate) fn exec_opts(opts: &RunOpts, tag: &str) -> Result<(String, i32), String> {
    let cfg = opts.config(tag)?;
    let out = boot(&cfg, 300)?;
    match out.guest_status() {
        Some(st) if !out.timed_out => Ok((out.console_str().replace("\r\n", "\n"), st)),
        _ => Err(explain(&out, "the guest reported no exit status")),
    }
}

/// A shell loop printing `PATH MODE_HEX LINK_TARGET` (busybox `stat -c %f`,
/// `readlink`) for each of `paths`, and what it must print for the host
/// tree entries `expect` ((guest path, host path) pairs).
fn stat_lines(expect: &[(String, std::path::PathBuf)]) -> Result<(String, Vec<String>), String> {
    use std::os::unix::fs::MetadataExt;
    let mut cmd = String::from("for p in");
    let mut want = Vec::new();
    for (guest, host) in expect {
        let md = std::fs::symlink_metadata(host).map_err(|e| format!("{}: {e}", host.display()))?;
        let target = if md.file_type().is_symlink() {
            std::fs::read_link(host)
                .map_err(|e| format!("{}: {e}", host.display()))?
                .display()
                .to_string()
        } else {
            String::new()
        };
        cmd.push_str(&format!(" '{guest}'"));
        want.push(
            format!("{guest} {:x} {target}", md.mode())
                .trim_end()
                .to_string(),
        );
    }
    cmd.push_str("; do echo \"$p $(stat -c %f \"$p\") $(readlink \"$p\")\"; done; ");
    Ok((cmd, want))
}

/// Every line of `want` must be a line of `console` (trailing blanks aside).
pub fn expect_lines(console: &str, want: &[String]) -> Result<(), String> {
    let have: Vec<&str> = console.lines().map(str::trim_end).collect();
    let missing: Vec<&String> = want
        .iter()
        .filter(|w| !have.contains(&w.as_str()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the guest lacks (path mode link):\n{}\n--- console ---\n{console}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }
}

/// The PT_INTERP path of an ELF64 little-endian executable.
fn pt_interp(elf: &[u8]) -> Option<String> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let int = |at: usize, n: usize| -> Option<u64> {
        let b = elf.get(at..at.checked_add(n)?)?;
        Some(b.iter().rev().fold(0, |v, &x| v << 8 | u64::from(x)))
    };
    let (phoff, phentsize, phnum) = (int(0x20, 8)?, int(0x36, 2)?, int(0x38, 2)?);
    (0..phnum).find_map(|i| {
        let ph = usize::try_from(phoff + i * phentsize).ok()?;
        if int(ph, 4)? != 3 {
            return None;
        }
        let (off, len) = (int(ph + 8, 8)? as usize, int(ph + 32, 8)? as usize);
        let s = elf.get(off..off.checked_add(len)?)?;
        let s = s.split(|&c| c == 0).next()?;
        Some(String::from_utf8_lossy(s).into_owned())
    })
}

/// `cargo xtask run --pkg sqlite3`: every file, link and directory of the
/// closure's packages (documentation aside) is in the guest at its Debian
/// path (merged-/usr) with its mode and link target; the interpreter named
/// by sqlite3's PT_INTERP resolves to libc6's ld.so; /bin/sh is still
/// busybox; the files maintainer scripts would make are there; and
/// sqlite3 runs (the kernel loads ld.so, which maps libsqlite3): it
/// reports the library's upstream version and sums a small table.
fn debian_pkg_root() -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let pkgs = vec!["sqlite3".to_string()];
    let unpacked = crate::debian::prepare(&pkgs)?;
    let tree_of = |name: &str| {
        unpacked
            .iter()
            .find(|u| u.name == name)
            .map(|u| u.tree.clone())
            .ok_or(format!("apt did not choose {name}"))
    };
    let mut entries = Vec::new();
    for u in &unpacked {
        let mut stack = vec![u.tree.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
                let e = e.map_err(|e| e.to_string())?;
                let rel = e
                    .path()
                    .strip_prefix(&u.tree)
                    .map_err(|e| e.to_string())?
                    .to_path_buf();
                let guest = crate::initramfs::canonical(&rel.display().to_string());
                // Directories shared by several packages (and gconv's 250
                // modules) would only make the list long.
                if crate::debian::stripped(&guest) || guest.contains("/gconv") {
                    continue;
                }
                let ft = e.file_type().map_err(|e| e.to_string())?;
                if ft.is_dir() {
                    stack.push(e.path());
                } else {
                    entries.push((guest, e.path()));
                }
            }
        }
    }
    let sqlite = std::fs::read(tree_of("sqlite3")?.join("usr/bin/sqlite3"))
        .map_err(|e| format!("sqlite3: {e}"))?;
    let interp = pt_interp(&sqlite).ok_or("sqlite3 has no PT_INTERP")?;
    let ld_so = tree_of("libc6")?.join("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    let ld_size = std::fs::metadata(&ld_so)
        .map_err(|e| format!("{}: {e}", ld_so.display()))?
        .size();
    let (loop_cmd, mut want) = stat_lines(&entries)?;
    let cmd = format!(
        "{loop_cmd}\
         echo \"interp $(stat -L -c '%s %F' {interp})\"; \
         for p in /usr/lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libc.so.6; \
         do echo \"libc $p $(stat -L -c %F $p)\"; done; \
         echo \"tops $(readlink /bin) $(readlink /sbin) $(readlink /lib) $(readlink /lib64)\"; \
         echo \"sh $(readlink /bin/sh) $(readlink /usr/bin/busybox)\"; \
         grep -q '^root:x:0:0:' /etc/passwd && grep -q '^root:x:0:' /etc/group \
         && grep -q '^hosts:' /etc/nsswitch.conf && grep -q localhost /etc/hosts && echo etc-ok; \
         test -e /usr/share/doc || echo no-doc; \
         sqlite3 /tmp/t.db 'select sqlite_version(); create table t(a,b); \
         insert into t values(1,2),(3,4); select sum(a), sum(b) from t;'; \
         echo \"sqlite3 status $?\""
    );
    // Debian's version is UPSTREAM-REVISION; the library reports UPSTREAM.
    let lib = unpacked
        .iter()
        .find(|u| u.name.starts_with("libsqlite3"))
        .ok_or("apt did not choose libsqlite3")?;
    let upstream = lib.version.split('-').next().unwrap_or(&lib.version);
    want.extend([
        format!("interp {ld_size} regular file"),
        "libc /usr/lib/x86_64-linux-gnu/libc.so.6 regular file".to_string(),
        "libc /lib/x86_64-linux-gnu/libc.so.6 regular file".to_string(),
        "tops usr/bin usr/sbin usr/lib usr/lib64".to_string(),
        "sh /bin/busybox".to_string(),
        "etc-ok".to_string(),
        "no-doc".to_string(),
        upstream.to_string(),
        "4|6".to_string(),
        "sqlite3 status 0".to_string(),
    ]);
    let opts = RunOpts {
        exec: Some(cmd),
        pkgs,
        ..Default::default()
    };
    let (console, _) = exec_opts(&opts, "pkg")?;
    expect_lines(&console, &want)?;
    eprintln!(
        "  {} entries of {} packages checked; PT_INTERP {interp}; {}",
        entries.len(),
        unpacked.len(),
        console
            .lines()
            .find(|l| l.starts_with("sqlite3 status"))
            .unwrap_or("sqlite3 status ?")
    );
    Ok(())
}

/// Two Debian sqlite3 processes writing one database at once, which only
/// works with real fcntl record locks (and, in WAL mode, a MAP_SHARED
/// index): first a writer holding its transaction open makes a second
/// one without a busy timeout fail with "database is locked" and one
/// with a timeout wait for the commit; then two writers insert 200 rows
/// each, one transaction per row, in rollback-journal and then WAL mode.
/// Every row must be there and `PRAGMA integrity_check` must say ok.
const SQLITE_CONCURRENT: &str = r#"
cd /tmp
rm -f c.db c.db-journal c.db-wal c.db-shm held released
sqlite3 c.db 'CREATE TABLE t(w INTEGER, i INTEGER);'
(echo 'BEGIN IMMEDIATE;'; echo 'INSERT INTO t VALUES(0,0);'; echo '.shell touch /tmp/held'
 while [ ! -e /tmp/released ]; do sleep 0.1; done; echo 'COMMIT;') | sqlite3 c.db &
while [ ! -e /tmp/held ]; do sleep 0.1; done
if sqlite3 c.db 'INSERT INTO t VALUES(0,1);' 2>&1 | grep -q 'database is locked'; then
  echo 'no timeout: database is locked'; else echo 'no timeout: NOT refused'; fi
(sqlite3 -cmd '.timeout 60000' c.db 'INSERT INTO t VALUES(0,2);'; echo "with timeout: status $?") &
sleep 1
touch /tmp/released
wait
for mode in DELETE WAL; do
  sqlite3 c.db "PRAGMA journal_mode=$mode;" >/dev/null
  for n in 1 2; do
    (i=1; while [ $i -le 200 ]; do echo "BEGIN IMMEDIATE; INSERT INTO t VALUES($n,$i); COMMIT;"; i=$((i+1)); done       | sqlite3 -bail -cmd '.timeout 60000' c.db; echo "$mode writer $n status $?") &
  done
  wait
  echo "$mode $(sqlite3 c.db 'SELECT count(*), count(DISTINCT w), sum(i) FROM t; PRAGMA integrity_check;' | tr '\n' ' ')"
done
"#;

fn sqlite3_concurrent() -> Result<(), String> {
    let script = artifacts::out_dir().join(format!("sqlite-concurrent-{}.sh", std::process::id()));
    artifacts::write_with_mode(&script, SQLITE_CONCURRENT.as_bytes(), 0o755)?;
    let opts = RunOpts {
        exec: Some("/bin/sh /tmp/sqlite-concurrent.sh 2>&1; echo \"script status $?\"".into()),
        pkgs: vec!["sqlite3".to_string()],
        adds: vec![artifacts::Addition {
            host: script.clone(),
            guest: "/tmp/sqlite-concurrent.sh".into(),
        }],
        ..Default::default()
    };
    let r = exec_opts(&opts, "sqlite-concurrent");
    let _ = std::fs::remove_file(&script);
    let (console, _) = r?;
    // Rows: (0,0) and (0,2) from the first part, then 200 per writer and
    // mode; sum(i) = 2 + 2 * 20100 per mode.
    let want: Vec<String> = [
        "no timeout: database is locked",
        "with timeout: status 0",
        "DELETE writer 1 status 0",
        "DELETE writer 2 status 0",
        "DELETE 402|3|40202 ok",
        "WAL writer 1 status 0",
        "WAL writer 2 status 0",
        "WAL 802|3|80402 ok",
        "script status 0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expect_lines(&console, &want)
}

/// `--add DIR:GUEST` and `--add DIR` (to /mnt/NAME) put a whole host tree
/// into the guest: an executable script run through a relative symlink, a
/// private file, a dangling absolute symlink, a private directory and an
/// empty sticky one, each with its mode.
fn add_host_tree() -> Result<(), String> {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let name = format!("add-tree-{}", std::process::id());
    let dir = artifacts::out_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    let mk = || -> std::io::Result<()> {
        let mode = |p: &str, m: u32| {
            std::fs::set_permissions(dir.join(p), std::fs::Permissions::from_mode(m))
        };
        std::fs::create_dir_all(dir.join("bin"))?;
        std::fs::create_dir_all(dir.join("private"))?;
        std::fs::create_dir_all(dir.join("empty"))?;
        std::fs::write(
            dir.join("bin/hello"),
            "#!/bin/sh\necho hello from the tree\n",
        )?;
        std::fs::write(dir.join("private/key"), "k")?;
        mode("bin/hello", 0o750)?;
        mode("private/key", 0o600)?;
        mode("private", 0o700)?;
        mode("empty", 0o1777)?;
        symlink("bin/hello", dir.join("hello"))?;
        symlink("/nonexistent/target", dir.join("dangling"))
    };
    let made = mk().map_err(|e| format!("{}: {e}", dir.display()));
    let result = made.and_then(|()| {
        let mut entries = Vec::new();
        for rel in [
            "bin",
            "bin/hello",
            "private",
            "private/key",
            "empty",
            "hello",
            "dangling",
        ] {
            for guest in ["/opt/tree".to_string(), format!("/mnt/{name}")] {
                entries.push((format!("{guest}/{rel}"), dir.join(rel)));
            }
        }
        let (loop_cmd, mut want) = stat_lines(&entries)?;
        want.push("hello from the tree".into());
        want.push("empty: 0".into());
        let opts = RunOpts {
            exec: Some(format!(
                "{loop_cmd}/opt/tree/hello; echo \"empty: $(ls -A /opt/tree/empty | wc -l)\""
            )),
            adds: vec![
                artifacts::Addition::parse(&format!("{}:/opt/tree", dir.display()))?,
                artifacts::Addition::parse(&dir.display().to_string())?,
            ],
            ..Default::default()
        };
        let (console, st) = exec_opts(&opts, "add-tree")?;
        expect_lines(&console, &want)?;
        if st != 0 {
            return Err(format!("status {st}:\n{console}"));
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn pt_interp_of_a_dynamic_executable() {
        // This test binary is an ordinary dynamically linked one.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let interp = super::pt_interp(&me).expect("PT_INTERP");
        assert!(
            interp.starts_with('/') && interp.contains("ld-linux"),
            "{interp}"
        );
        assert_eq!(super::pt_interp(b"\x7fELF\x02\x01"), None);
        assert_eq!(super::pt_interp(b"#!/bin/sh"), None);
    }
}
