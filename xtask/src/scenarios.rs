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
    let opts = RunOpts {
        exec: Some(cmd.to_string()),
        adds: adds.to_vec(),
        smp,
        append: append.split_whitespace().map(String::from).collect(),
        ..Default::default()
    };
    let cfg = opts.config("scenario")?;
    let out = boot(&cfg, 300)?;
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

fn boot(cfg: &Config, secs: u64) -> Result<Outcome, String> {
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

fn explain(out: &Outcome, what: &str) -> String {
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

/// `cargo xtask bench --quick`: the benchmark suite boots both kernels and
/// every benchmark reports on both (the numbers are not checked here).
fn bench_quick() -> Result<(), String> {
    crate::bench::bench(&["--quick".to_string()]).map(|_| ())
}
