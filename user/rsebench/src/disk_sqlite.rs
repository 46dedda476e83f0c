//! Debian's sqlite3 on the ext4 disk: one-row transactions with
//! `PRAGMA synchronous=FULL` in its default rollback-journal mode (each
//! commit writes and fsyncs the journal, then the database, then deletes
//! the journal).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::disk::Disk;
use crate::{clock, Outcome, Size};

const SQLITE3: &str = "/usr/bin/sqlite3";

/// Runs `script` through one sqlite3 process on `db`: its output and the
/// nanoseconds from spawn to exit.
fn sqlite(db: &str, script: &str) -> Result<(String, u64), String> {
    let t = clock::now_ns();
    let mut child = Command::new(SQLITE3)
        .args(["-batch", "-bail", db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {SQLITE3}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("sqlite3 stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("sqlite3: {e}"))?;
    let ns = clock::now_ns() - t;
    if !out.status.success() {
        return Err(format!(
            "sqlite3 {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok((String::from_utf8_lossy(&out.stdout).trim().to_string(), ns))
}

/// Nanoseconds per one-row transaction: a process doing N of them, less
/// one doing none (so sqlite3's start, its dynamic linking and the open
/// of the database are not counted).
pub fn fullsync_tx(size: Size, d: &Disk) -> Outcome {
    if std::fs::metadata(SQLITE3).is_err() {
        return Outcome::Unsupported(format!("no {SQLITE3} in this root"));
    }
    let db = d.path("bench.db");
    for f in ["", "-journal"] {
        let _ = std::fs::remove_file(format!("{db}{f}"));
    }
    let n = size.n(200);
    let run = || -> Result<f64, String> {
        sqlite(&db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);")?;
        let (_, base) = sqlite(&db, "PRAGMA synchronous=FULL; SELECT count(*) FROM t;")?;
        let mut script = String::from("PRAGMA synchronous=FULL;\n");
        for i in 0..n {
            script += &format!("INSERT INTO t(v) VALUES('row {i:06}');\n");
        }
        let before = crate::disk::diskstats(&d.dev);
        let (_, ns) = sqlite(&db, &script)?;
        crate::disk::note_per_op(
            "disk_sqlite_fullsync_tx",
            &before,
            &crate::disk::diskstats(&d.dev),
            n as u64,
        );
        let (count, _) = sqlite(&db, "SELECT count(*) FROM t;")?;
        if count != n.to_string() {
            return Err(format!("{count} rows after {n} transactions"));
        }
        Ok(ns.saturating_sub(base) as f64 / n as f64)
    };
    match run() {
        Ok(ns) => Outcome::NsPerOp(ns),
        Err(why) => Outcome::Unsupported(why),
    }
}
