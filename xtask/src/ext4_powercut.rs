//! Power cuts under Debian's sqlite3 on an ext4 disk (issue 16): QEMU is
//! SIGKILLed at a random moment while sqlite3 commits transactions, and
//! every transaction whose COMMIT returned must still be there.
//!
//! One image, two databases: `r.db` in rollback-journal mode
//! (journal_mode=delete, synchronous=EXTRA: see [`cycle_script`]) and
//! `w.db` in WAL mode (synchronous=FULL, wal_autocheckpoint=16, so
//! checkpoints into the database file are cut too). Each cycle is one
//! boot that
//! 1. mounts the disk (RSE OS replays the ext4 journal when the last cut
//!    left it needing recovery),
//! 2. prints `check DB count|max|kept` and `ok` for both databases (sqlite3
//!    recovers a hot rollback journal or a WAL on this first open), and
//! 3. runs one sqlite3 process committing one-row transactions into one
//!    database (alternating by cycle), printing `committed DB N` after each
//!    COMMIT returned, until the host SIGKILLs QEMU 0.3–3 s after the
//!    first such line.
//!
//! The host then requires, from the next boot's check: `integrity_check`
//! ok, no hole in the ids (count = max: ids are sequential rowids, so a
//! lost older transaction shows), exactly the last 40 rows keeping their
//! blob (no half transaction), and max ≥ every id printed so far and
//! every max seen before (nothing committed or once read goes away). It
//! also copies the image after every cut, lets the host's `e2fsck -p`
//! replay the journal on the copy and requires `e2fsck -fn` clean there.
//! A last boot checks both databases, unmounts, and `e2fsck -fn` on the
//! image itself must be clean: RSE OS's own replay and umount, no host
//! repair.
//!
//! Each transaction inserts an id into `t` and a 100–4000 byte blob under
//! the same id into `b`, and deletes the blob 40 ids back: `t` grows by a
//! few bytes per commit and `b`'s freed pages are reused, so the
//! databases stay small however many cycles run. (Clearing a blob in
//! place instead left each leaf page with 1–2 short rows: the files grew
//! by ~3 KB per commit and filled the 32 MiB disk, SQLITE_FULL, once
//! write-back caching made commits fast enough.)
//!
//! Cost (TCG, 2 cores shared with other QEMUs): 2.2–2.7 s from QEMU's
//! start to the first commit (boot, mount, replay, one sqlite3 check
//! process), then the 0.3–3 s until the cut, ~0.15 s of host e2fsck: 50
//! cycles took 231 s (301 s with a second sqlite3 check process).
//! `cargo xtask soak powercut [--cycles N] [--seed S]` runs more. The seed is printed; the kill
//! delays replay with `RSE_POWERCUT_SEED=S` (the guest's timing does not,
//! so a replay cuts near, not at, the same instruction).
//!
//! What a SIGKILL of QEMU cuts: the guest's writes QEMU had not yet made
//! (QEMU writes through to the host's page cache, which survives), and
//! everything after. It tests the order and atomicity of what RSE OS
//! writes, not the loss of a volatile disk cache at a flush boundary.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::qemu::{self, Config};
use crate::{artifacts, RunOpts};

/// Kill points in `cargo xtask test`.
pub const TEST_CYCLES: u32 = 50;

const SETUP: &str = r#"
mkdir -p /mnt/d
mount -t ext4 /dev/vda /mnt/d || exit 1
cd /mnt/d
sqlite3 r.db "PRAGMA journal_mode=delete; CREATE TABLE t(id INTEGER PRIMARY KEY); CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB);" >/dev/null || exit 1
sqlite3 w.db "PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY); CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB);" >/dev/null || exit 1
cd /
umount /mnt/d && echo setup-done
"#;

/// Prints `found FILE SIZE` for a hot rollback journal or a WAL the cut
/// left, then for both databases `check DB count|max|kept` and the lines
/// of `PRAGMA integrity_check` (`ok`); `kept` counts the blobs among the
/// last 40 ids less those outside them. One sqlite3 process (w.db
/// attached): each process start costs a few hundred ms under TCG.
const CHECK: &str = r#"
for f in r.db-journal w.db-wal; do [ -e /mnt/d/$f ] && echo "found $f $(stat -c %s /mnt/d/$f)"; done
sqlite3 /mnt/d/r.db "ATTACH '/mnt/d/w.db' AS w;
SELECT 'check r ' || count(*) || '|' || coalesce(max(id),0) || '|' || (SELECT coalesce(sum(CASE WHEN b.id > m - 40 AND b.id <= m THEN 1 ELSE -1 END), 0) FROM main.b, (SELECT coalesce(max(id), 0) AS m FROM main.t)) FROM main.t; PRAGMA main.integrity_check;
SELECT 'check w ' || count(*) || '|' || coalesce(max(id),0) || '|' || (SELECT coalesce(sum(CASE WHEN b.id > m - 40 AND b.id <= m THEN 1 ELSE -1 END), 0) FROM w.b, (SELECT coalesce(max(id), 0) AS m FROM w.t)) FROM w.t; PRAGMA w.integrity_check;"
"#;

/// One cycle in mode `db` (r or w): mount, check, commit until killed.
fn cycle_script(db: &str) -> String {
    let pragmas = if db == "w" {
        "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=16;"
    } else {
        // EXTRA: sqlite3 fsyncs the directory after unlinking the
        // journal, the commit point of journal_mode=delete. With FULL it
        // does not, and a cut right after COMMIT returned finds the
        // journal still there and rolls the transaction back (seen here
        // with seed 289616435: `found r.db-journal`, the last printed id
        // gone), as SQLite documents for any OS.
        "PRAGMA synchronous=EXTRA;"
    };
    format!(
        r#"
mkdir -p /mnt/d
mount -t ext4 /dev/vda /mnt/d && echo mounted
{CHECK}
cd /mnt/d
(echo "{pragmas}"; while echo "BEGIN; INSERT INTO t DEFAULT VALUES; INSERT INTO b VALUES(last_insert_rowid(), randomblob(100 + abs(random()) % 3900)); DELETE FROM b WHERE id = last_insert_rowid() - 40; COMMIT; SELECT 'committed {db} ' || max(id) FROM t;"; do :; done) | sqlite3 -bail {db}.db
echo "loop ended $?"
"#
    )
}

const FINAL: &str = r#"
mkdir -p /mnt/d
mount -t ext4 /dev/vda /mnt/d && echo mounted
CHECK_HERE
umount /mnt/d && echo umounted
"#;

/// A splitmix64 stream: the kill delays from one printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi) milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// What the host knows a database must hold.
#[derive(Default, Clone, Copy)]
struct Want {
    /// Highest id printed after its COMMIT returned.
    printed: u64,
    /// Highest max(id) a check has read.
    seen: u64,
}

/// How a powercut run went.
#[derive(Default)]
struct Stats {
    commits: [u64; 2],
    /// Cuts after which the image's superblock said needs_recovery.
    needed_replay: u32,
    /// Largest (max id read − max id printed): commits done but not seen
    /// printed before the cut.
    max_ahead: u64,
    /// Boots that found a `-journal` (hot, rolled back) or a `-wal` the
    /// cut left.
    found: [u32; 2],
    /// Wall time from QEMU's start to the first commit, summed.
    to_commit: Duration,
    /// Wall time of the host's per-cut e2fsck, summed.
    host_fsck: Duration,
}

pub fn ext4_sqlite_power_cut() -> Result<(), String> {
    let seed = seed_from_env()?;
    run_cycles(TEST_CYCLES, seed)
}

fn seed_from_env() -> Result<u64, String> {
    match std::env::var("RSE_POWERCUT_SEED") {
        Ok(s) => s
            .parse()
            .map_err(|_| format!("RSE_POWERCUT_SEED={s:?}: not a number")),
        Err(_) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_000)
            .unwrap_or(1)),
    }
}

/// `soak powercut [--cycles N] [--seed S]`.
pub fn soak(args: &[String]) -> Result<i32, String> {
    let mut cycles = 500;
    let mut seed = seed_from_env()?;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{a} needs a number"))
        };
        match a.as_str() {
            "--cycles" => cycles = num()? as u32,
            "--seed" => seed = num()?,
            _ => return Err(format!("soak powercut: unknown option {a}")),
        }
    }
    run_cycles(cycles, seed).map(|()| 0)
}

fn run_cycles(cycles: u32, seed: u64) -> Result<(), String> {
    eprintln!("powercut: {cycles} cycles, seed {seed} (replay: RSE_POWERCUT_SEED={seed})");
    let id = std::process::id();
    let empty = artifacts::out_dir().join(format!("powercut-empty-{id}"));
    let img = artifacts::out_dir().join(format!("powercut-{id}.img"));
    let copy = artifacts::out_dir().join(format!("powercut-{id}-copy.img"));
    let r = std::fs::create_dir_all(&empty)
        .map_err(|e| e.to_string())
        .and_then(|()| cycles_on(&empty, &img, &copy, cycles, seed));
    let _ = std::fs::remove_dir_all(&empty);
    let _ = std::fs::remove_file(&copy);
    match r {
        Ok(()) => {
            let _ = std::fs::remove_file(&img);
            Ok(())
        }
        // The image stays for a look with debugfs / e2fsck.
        Err(e) => Err(format!(
            "powercut seed {seed} (replay: RSE_POWERCUT_SEED={seed}): {e}\nimage kept: {}",
            img.display()
        )),
    }
}

fn config(script: &str, tag: &str) -> Result<Config, String> {
    RunOpts {
        exec: Some(script.to_string()),
        pkgs: vec!["sqlite3".to_string()],
        ..Default::default()
    }
    .config(tag)
}

fn cycles_on(empty: &Path, img: &Path, copy: &Path, cycles: u32, seed: u64) -> Result<(), String> {
    crate::disk_image::make(&crate::disk_image::DiskOpts {
        out: img.to_path_buf(),
        size: "32M".into(),
        pkgs: Vec::new(),
        root: false,
        dir: Some(empty.to_path_buf()),
    })?;
    let with_disk = |mut c: Config| {
        c.disks = vec![img.to_path_buf()];
        c
    };
    let setup = with_disk(config(SETUP, "powercut-setup")?);
    let modes = [
        with_disk(config(&cycle_script("r"), "powercut-r")?),
        with_disk(config(&cycle_script("w"), "powercut-w")?),
    ];
    let last = with_disk(config(
        &FINAL.replace("CHECK_HERE", CHECK),
        "powercut-final",
    )?);
    let all = [&setup, &modes[0], &modes[1], &last];
    let r = cut_cycles(&all, img, copy, cycles, seed);
    // Per-run scratch files (RunOpts::config names them by pid).
    for c in all {
        let _ = std::fs::remove_file(&c.log);
        if let Some(i) = &c.initrd {
            let _ = std::fs::remove_file(i);
        }
    }
    r
}

/// The setup boot, `cycles` cut boots, the final boot and `e2fsck -fn`.
fn cut_cycles(
    [setup, r, w, last]: &[&Config; 4],
    img: &Path,
    copy: &Path,
    cycles: u32,
    seed: u64,
) -> Result<(), String> {
    let modes = [r, w];
    let t0 = Instant::now();
    let (lines, ..) = boot_until(setup, None)?;
    if !lines.iter().any(|l| l == "setup-done") {
        return Err(format!("setup boot:\n{}", lines.join("\n")));
    }
    let mut rng = Rng(seed);
    let mut want = [Want::default(); 2];
    let mut stats = Stats::default();
    for n in 0..cycles {
        let mode = (n % 2) as usize;
        let delay = rng.millis(300, 3000);
        let t = Instant::now();
        let (lines, killed, first) = boot_until(modes[mode], Some(delay))?;
        stats.to_commit += first.unwrap_or(t.elapsed());
        for (i, f) in ["found r.db-journal", "found w.db-wal"].iter().enumerate() {
            stats.found[i] += u32::from(lines.iter().any(|l| l.starts_with(f)));
        }
        let ctx = || format!("cycle {n} ({}):\n{}", ["r", "w"][mode], tail(&lines));
        if !killed {
            return Err(format!("the guest stopped before the cut; {}", ctx()));
        }
        if !lines.iter().any(|l| l == "mounted") {
            return Err(format!("mount failed; {}", ctx()));
        }
        check(&lines, &mut want, &mut stats).map_err(|e| format!("{e}; {}", ctx()))?;
        for l in &lines {
            if let Some(id) = l.strip_prefix(["committed r ", "committed w "][mode]) {
                let id: u64 = id
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad line {l:?}; {}", ctx()))?;
                want[mode].printed = want[mode].printed.max(id);
                stats.commits[mode] += 1;
            }
        }
        if needs_recovery(img)? {
            stats.needed_replay += 1;
        }
        let t = Instant::now();
        host_replay_clean(img, copy).map_err(|e| format!("after cycle {n}: {e}"))?;
        stats.host_fsck += t.elapsed();
        eprintln!(
            "powercut: cycle {n} ({}) cut after {delay:?}: r ≥ {}, w ≥ {}",
            ["r", "w"][mode],
            want[0].printed,
            want[1].printed
        );
    }
    let (lines, ..) = boot_until(last, None)?;
    check(&lines, &mut want, &mut stats).map_err(|e| format!("final boot: {e}"))?;
    if !lines.iter().any(|l| l == "umounted") {
        return Err(format!("final boot did not unmount:\n{}", tail(&lines)));
    }
    crate::ext4_programs::fsck_clean(img).map_err(|e| format!("after the final umount: {e}"))?;
    eprintln!(
        "powercut: {cycles} cuts in {:.0?}: {} + {} transactions printed committed (rollback, WAL), \
         all there; {} cuts left the ext4 journal to replay (RSE OS replayed it at mount); \
         at most {} commits ahead of the last printed id; boots found {} hot rollback journals \
         and {} WALs; e2fsck -fn clean. Per cycle: {:.1?} from QEMU's start to the first commit, \
         {:.2?} of host e2fsck",
        t0.elapsed(),
        stats.commits[0],
        stats.commits[1],
        stats.needed_replay,
        stats.max_ahead,
        stats.found[0],
        stats.found[1],
        stats.to_commit / cycles.max(1),
        stats.host_fsck / cycles.max(1),
    );
    Ok(())
}

/// The `check` lines of a boot against what must be there.
fn check(lines: &[String], want: &mut [Want; 2], stats: &mut Stats) -> Result<(), String> {
    for (i, db) in ["r", "w"].iter().enumerate() {
        let prefix = format!("check {db} ");
        let at = lines
            .iter()
            .position(|l| l.starts_with(&prefix))
            .ok_or(format!("no check line for {db}.db"))?;
        let l = &lines[at][prefix.len()..];
        let verdict = lines.get(at + 1).map_or("", String::as_str);
        let bad = || format!("{db}.db: {l:?}, then {verdict:?}");
        let v: Vec<u64> = l
            .split('|')
            .map(|x| x.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [count, max, kept] = v[..] else {
            return Err(bad());
        };
        if verdict != "ok" {
            return Err(format!("{db}.db integrity_check: {}", bad()));
        }
        if count != max {
            return Err(format!(
                "{db}.db lost transactions: {count} rows but ids up to {max}"
            ));
        }
        // Each transaction inserts a blob and deletes the one 40 ids back:
        // half a transaction shows here.
        if kept != max.min(40) {
            return Err(format!(
                "{db}.db: {kept} rows keep their blob, not {} (a torn transaction)",
                max.min(40)
            ));
        }
        let w = &mut want[i];
        if max < w.printed {
            return Err(format!(
                "{db}.db lost committed transactions: ids {}..={} were printed after COMMIT, the database ends at {max}",
                max + 1,
                w.printed
            ));
        }
        if max < w.seen {
            return Err(format!(
                "{db}.db went back: a check read ids up to {}, now {max}",
                w.seen
            ));
        }
        stats.max_ahead = stats.max_ahead.max(max - w.printed);
        w.seen = max;
    }
    Ok(())
}

/// Boots `cfg`; with `cut`, SIGKILLs QEMU that long after the first
/// `committed` line (returns true then), else waits for it to stop.
/// Returns the console lines, whether it cut, and when the first commit
/// came.
fn boot_until(
    cfg: &Config,
    cut: Option<Duration>,
) -> Result<(Vec<String>, bool, Option<Duration>), String> {
    boot_until_line(cfg, cut, "committed ")
}

/// [`boot_until`] with the first line starting with `trigger` as the
/// moment the cut is timed from.
pub(crate) fn boot_until_line(
    cfg: &Config,
    cut: Option<Duration>,
    trigger: &str,
) -> Result<(Vec<String>, bool, Option<Duration>), String> {
    let limit = Duration::from_secs(240);
    let mut child = Command::new(qemu::qemu_binary())
        .args(cfg.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("qemu: {e}"))?;
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).split(b'\n') {
            let Ok(l) = l else { break };
            let s = String::from_utf8_lossy(&l).trim_end().to_string();
            if tx.send(s).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut lines = Vec::new();
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    let mut first = None;
    loop {
        let now = Instant::now();
        if kill_at.is_some_and(|k| now >= k) {
            // The power cut: SIGKILL to our own child, by its pid.
            let _ = child.kill();
            killed = true;
            break;
        }
        if now - start > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {limit:?}:\n{}", tail(&lines)));
        }
        let wait = kill_at.map_or(Duration::from_millis(200), |k| k - now);
        match rx.recv_timeout(wait.min(Duration::from_millis(200))) {
            Ok(l) => {
                if first.is_none() && l.starts_with(trigger) {
                    first = Some(start.elapsed());
                    kill_at = cut.map(|d| Instant::now() + d);
                }
                lines.push(l);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.wait();
    // Whatever QEMU had written to the pipe before it died.
    lines.extend(rx.iter());
    let _ = reader.join();
    Ok((lines, killed, first))
}

/// The lines worth seeing: all but `committed` ones, and the last few.
fn tail(lines: &[String]) -> String {
    let from = lines.len().saturating_sub(5);
    lines
        .iter()
        .enumerate()
        .filter(|(i, l)| *i >= from || !l.starts_with("committed "))
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the image's superblock has EXT4_FEATURE_INCOMPAT_RECOVER (the
/// journal holds committed transactions not yet written home).
pub(crate) fn needs_recovery(img: &Path) -> Result<bool, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(img).map_err(|e| format!("{}: {e}", img.display()))?;
    let mut b = [0u8; 4];
    f.seek(SeekFrom::Start(1024 + 0x60))
        .and_then(|_| f.read_exact(&mut b))
        .map_err(|e| format!("{}: {e}", img.display()))?;
    Ok(u32::from_le_bytes(b) & 0x4 != 0)
}

/// On a copy of the cut image: the host's `e2fsck -p` replays the journal
/// (exit 0 or 1), then `e2fsck -fn` must be clean. The image itself is
/// left as the cut left it for RSE OS's next mount.
pub(crate) fn host_replay_clean(img: &Path, copy: &Path) -> Result<(), String> {
    let st = Command::new("cp")
        .args(["--sparse=always"])
        .arg(img)
        .arg(copy)
        .status()
        .map_err(|e| format!("cp: {e}"))?;
    if !st.success() {
        return Err("cp of the image failed".into());
    }
    let p = Command::new("/usr/sbin/e2fsck")
        .arg("-p")
        .arg(copy)
        .output()
        .map_err(|e| format!("e2fsck: {e}"))?;
    if !matches!(p.status.code(), Some(0 | 1)) {
        return Err(format!(
            "e2fsck -p on a copy of the cut image: {:?}\n{}",
            p.status.code(),
            String::from_utf8_lossy(&p.stdout)
        ));
    }
    crate::ext4_programs::fsck_clean(copy)
        .map_err(|e| format!("on a copy of the cut image after e2fsck -p's replay: {e}"))
}
