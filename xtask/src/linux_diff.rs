//! Differential tests against Linux: one shell script, run in the same
//! root (busybox plus Debian packages) on RSE OS and on Debian's own
//! Linux kernel (the one the benchmarks boot), must print the same thing.
//! Linux is the oracle; nothing expected is written down.

use std::path::PathBuf;
use std::time::Duration;

use crate::artifacts::{self, Addition};
use crate::qemu::{self, Config, Machine};
use crate::RunOpts;

const BEGIN: &str = "DIFF-BEGIN";
const END: &str = "DIFF-END";
const SCRIPT: &str = "/etc/rse/diff.sh";
const LINUX_INIT: &str = "/etc/rse/linux-init";

/// The lines between the markers (CRLF made LF), with the script's status
/// from the end marker.
fn between(console: &str) -> Result<(String, String), String> {
    let console = console.replace("\r\n", "\n");
    let start = console
        .find(&format!("{BEGIN}\n"))
        .ok_or_else(|| format!("no {BEGIN} line; console:\n{console}"))?;
    let rest = &console[start + BEGIN.len() + 1..];
    let end = rest
        .find(&format!("{END} "))
        .ok_or_else(|| format!("no {END} line; console:\n{console}"))?;
    let status = rest[end + END.len() + 1..]
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    Ok((rest[..end].to_string(), status))
}

fn write_tmp(name: &str, text: &str, mode: u32) -> Result<PathBuf, String> {
    let p = artifacts::out_dir().join(format!("{name}-{}", std::process::id()));
    artifacts::write_with_mode(&p, text.as_bytes(), mode)?;
    Ok(p)
}

/// Runs `script` with `pkgs` in the root on both kernels; Ok if both print
/// the same lines and end with the same status.
pub fn compare(what: &str, script: &str, pkgs: &[&str]) -> Result<(), String> {
    let pkgs: Vec<String> = pkgs.iter().map(|s| s.to_string()).collect();
    let script_file = write_tmp("diff-script", script, 0o755)?;
    // Linux's init: the script, then init exits and the kernel (panic=-1,
    // QEMU -no-reboot) stops the machine.
    let init = format!(
        "#!/bin/sh\nmount -t proc proc /proc\necho {BEGIN}\n/bin/sh {SCRIPT} 2>&1\necho \"{END} $?\"\n"
    );
    let init_file = write_tmp("linux-init", &init, 0o755)?;
    let adds = vec![
        Addition {
            host: script_file.clone(),
            guest: SCRIPT.into(),
        },
        Addition {
            host: init_file.clone(),
            guest: LINUX_INIT.into(),
        },
    ];

    let rse = RunOpts {
        exec: Some(format!(
            "echo {BEGIN}; /bin/sh {SCRIPT} 2>&1; echo \"{END} $?\""
        )),
        adds: adds.clone(),
        pkgs: pkgs.clone(),
        ..Default::default()
    };
    let (rse_console, _) = crate::scenarios::exec_opts(&rse, "diff")?;

    let (vmlinuz, _) = crate::bench::linux::kernel()?;
    let initrd = artifacts::build_initramfs(
        None,
        &adds,
        &pkgs,
        &format!("initramfs-diff-{}.cpio", std::process::id()),
    )?;
    let log = artifacts::out_dir().join(format!("linux-diff-{}.log", std::process::id()));
    let mut cfg = Config::new(&vmlinuz, &log);
    cfg.machine = Machine::Pc;
    cfg.smp = 2;
    cfg.mem_mib = 1024;
    cfg.initrd = Some(initrd.clone());
    cfg.append = format!("console=ttyS0 quiet loglevel=0 panic=-1 rdinit={LINUX_INIT}");
    let out = qemu::run_captured(&cfg, Duration::from_secs(600), false)
        .map_err(|e| format!("qemu (Linux): {e}"))?;
    for p in [&script_file, &init_file, &initrd, &log] {
        let _ = std::fs::remove_file(p);
    }
    let (linux, linux_status) = between(&out.console_str())?;
    let (ours, our_status) = between(&rse_console)?;
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

/// sqlite3: tables, 20,000 inserts in a transaction, an index, a join,
/// aggregates, a rollback journal and WAL, integrity checks.
pub fn sqlite3() -> Result<(), String> {
    let script = r#"
cd /tmp
db=/tmp/diff.db
rm -f $db $db-wal $db-shm $db-journal
sqlite3 $db <<'SQL'
PRAGMA journal_mode=DELETE;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000)
INSERT INTO t(k, v) SELECT i % 97, printf('row-%05d', i) FROM n;
CREATE INDEX t_k ON t(k);
CREATE TABLE names(k INTEGER PRIMARY KEY, name TEXT);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < 96)
INSERT INTO names SELECT i, 'name' || i FROM n;
SELECT count(*), sum(k), min(v), max(v) FROM t;
SELECT n.name, count(*), sum(t.id) FROM t JOIN names n ON n.k = t.k
  WHERE t.k IN (3, 50, 96) GROUP BY n.name ORDER BY n.name;
BEGIN; DELETE FROM t WHERE k = 5; ROLLBACK;
SELECT count(*) FROM t WHERE k = 5;
PRAGMA integrity_check;
PRAGMA journal_mode=WAL;
BEGIN; UPDATE t SET v = upper(v) WHERE id % 1000 = 0; COMMIT;
SELECT v FROM t WHERE id IN (1000, 20000) ORDER BY id;
PRAGMA wal_checkpoint(TRUNCATE);
PRAGMA integrity_check;
SQL
echo "sqlite3 status $?"
sqlite3 $db 'SELECT count(*), total(length(v)) FROM t;'
ls $db
"#;
    compare("sqlite3", script, &["sqlite3"])
}
