//! Programs on an ext4 disk: Debian's sqlite3 (committed rows survive a
//! power-off) and the rsetest cases of what it relies on (record locks,
//! MAP_SHARED file mappings), each ending with a clean `e2fsck -fn`.

use std::process::Command;

use crate::scenarios::{exec_opts, expect_lines};
use crate::{artifacts, RunOpts};

/// First boot: in rollback-journal mode (`r.db`) and in WAL mode (`w.db`)
/// several transactions, in several sqlite3 processes, two of them
/// writing the WAL database at once (the `-shm` index is a MAP_SHARED
/// mapping of an ext4 file both processes use), and `k.db` in WAL mode
/// with a reader holding it open, so its last commits are only in the
/// WAL when the guest stops. The guest then stops without unmounting
/// (init's exit syncs the mount); the second boot recovers `k.db` from
/// its WAL. Second boot: the
/// rows are all there, `PRAGMA integrity_check` says ok, the mount is
/// unmounted; on the host `e2fsck -fn` finds the image clean.
const FIRST: &str = r#"
set -e
mkdir -p /mnt/d
mount -t ext4 /dev/vda /mnt/d
cd /mnt/d
sqlite3 r.db "PRAGMA journal_mode=delete; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
for tx in 1 2 3; do
  sqlite3 r.db "BEGIN; INSERT INTO t(v) VALUES('a$tx'); INSERT INTO t(v) VALUES('b$tx'); COMMIT; BEGIN; INSERT INTO t(v) VALUES('c$tx'); COMMIT;"
done
echo "delete $(sqlite3 r.db 'SELECT count(*), sum(id) FROM t;')"
sqlite3 w.db "PRAGMA journal_mode=wal; CREATE TABLE t(w INTEGER, i INTEGER);" >/dev/null
for n in 1 2; do
  (i=1; while [ $i -le 30 ]; do echo "BEGIN IMMEDIATE; INSERT INTO t VALUES($n,$i); COMMIT;"; i=$((i+1)); done | sqlite3 -bail -cmd '.timeout 60000' w.db; echo "writer $n status $?") &
done
wait
echo "wal $(sqlite3 w.db 'PRAGMA journal_mode; SELECT count(*), sum(i) FROM t;' | tr '\n' ' ')"
sqlite3 k.db "PRAGMA journal_mode=wal; CREATE TABLE t(x);" >/dev/null
(echo "SELECT count(*) FROM t;"; sleep 600) | sqlite3 k.db >/dev/null &
sleep 1
for i in 1 2 3; do sqlite3 k.db "INSERT INTO t VALUES($i);"; done
[ -s k.db-wal ] && echo "k.db-wal kept"
cd /
echo first-boot-done
"#;

const SECOND: &str = r#"
mkdir -p /mnt/d
mount -t ext4 /dev/vda /mnt/d && echo mounted
echo "r $(sqlite3 /mnt/d/r.db 'SELECT count(*), sum(id), group_concat(v) FROM t; PRAGMA integrity_check;' | tr '\n' ' ')"
echo "w $(sqlite3 /mnt/d/w.db 'SELECT count(*), count(DISTINCT w), sum(i) FROM t; PRAGMA integrity_check;' | tr '\n' ' ')"
echo "k $(sqlite3 /mnt/d/k.db 'SELECT count(*), sum(x) FROM t; PRAGMA integrity_check;' | tr '\n' ' ')"
umount /mnt/d && echo umounted
"#;

pub fn ext4_sqlite_reboot() -> Result<(), String> {
    with_empty_image("sqlite-ext4", "64M", run)
}

fn run(img: &std::path::Path) -> Result<(), String> {
    let boot = |script: &str, name: &str| {
        let opts = RunOpts {
            exec: Some(script.to_string()),
            pkgs: vec!["sqlite3".to_string()],
            disks: vec![img.to_path_buf()],
            ..Default::default()
        };
        exec_opts(&opts, name)
    };
    let (c, _) = boot(FIRST, "sqlite-ext4-first")?;
    expect_lines(
        &c,
        &[
            "delete 9|45".to_string(),
            "writer 1 status 0".into(),
            "writer 2 status 0".into(),
            "wal wal 60|930".into(),
            "k.db-wal kept".into(),
            "first-boot-done".into(),
        ],
    )?;
    let (c, _) = boot(SECOND, "sqlite-ext4-second")?;
    expect_lines(
        &c,
        &[
            "mounted".to_string(),
            "r 9|45|a1,b1,c1,a2,b2,c2,a3,b3,c3 ok".into(),
            "w 60|2|930 ok".into(),
            "k 3|6 ok".into(),
            "umounted".into(),
        ],
    )?;
    fsck_clean(img)
}

/// Runs `f` on a fresh ext4 image of `size`, empty, made by the host's
/// mke2fs under a name from `tag` and this process; the image is removed
/// afterwards, whatever `f` returned.
pub(crate) fn with_empty_image(
    tag: &str,
    size: &str,
    f: impl FnOnce(&std::path::Path) -> Result<(), String>,
) -> Result<(), String> {
    let id = std::process::id();
    let empty = artifacts::out_dir().join(format!("{tag}-empty-{id}"));
    let img = artifacts::out_dir().join(format!("{tag}-{id}.img"));
    let r = std::fs::create_dir_all(&empty)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            crate::disk_image::make(&crate::disk_image::DiskOpts {
                out: img.clone(),
                size: size.into(),
                pkgs: Vec::new(),
                root: false,
                dir: Some(empty.clone()),
            })
        })
        .and_then(|_| f(&img));
    let _ = std::fs::remove_dir_all(&empty);
    let _ = std::fs::remove_file(&img);
    r
}

/// The rsetest program alone, as an addition to the guest's root.
pub(crate) fn rsetest_only() -> Result<Vec<artifacts::Addition>, String> {
    Ok(crate::userland::build_user_programs()?
        .into_iter()
        .filter(|(_, guest)| guest.ends_with("/rsetest"))
        .map(|(host, guest)| artifacts::Addition { host, guest })
        .collect())
}

/// `e2fsck -fn` on the host finds the image clean.
pub(crate) fn fsck_clean(img: &std::path::Path) -> Result<(), String> {
    let n = Command::new("/usr/sbin/e2fsck")
        .arg("-fn")
        .arg(img)
        .output()
        .map_err(|e| format!("e2fsck: {e}"))?;
    if !n.status.success() {
        return Err(format!(
            "e2fsck -fn: {:?}\n{}",
            n.status.code(),
            String::from_utf8_lossy(&n.stdout)
        ));
    }
    Ok(())
}

/// `rsetest record_locks` and `rsetest shared_file` on a file of an ext4
/// mount (locks keyed by file system and inode; mappings from the
/// mount's page cache, written back), then umount and `e2fsck -fn`.
pub fn ext4_rsetest_locks_mmap() -> Result<(), String> {
    with_empty_image("ext4-rsetest", "32M", rsetest_on)
}

fn rsetest_on(img: &std::path::Path) -> Result<(), String> {
    let adds = rsetest_only()?;
    let opts = RunOpts {
        exec: Some(
            "mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d && echo mounted; \
             rsetest record_locks /mnt/d; echo \"record_locks status $?\"; \
             rsetest shared_file /mnt/d; echo \"shared_file status $?\"; \
             rsetest create_race /mnt/d; echo \"create_race status $?\"; \
             umount /mnt/d && echo umounted"
                .into(),
        ),
        adds,
        disks: vec![img.to_path_buf()],
        // Every create on the mount waits 3 ms after finding the name
        // missing: the other processes of create_race find it missing
        // too, every time (it failed with EEXIST so before the fix).
        append: vec!["inject.create_us=3000".into()],
        ..Default::default()
    };
    let (c, _) = exec_opts(&opts, "ext4-rsetest")?;
    expect_lines(
        &c,
        &[
            "mounted".to_string(),
            "record_locks status 0".into(),
            "shared_file status 0".into(),
            "create_race status 0".into(),
            "umounted".into(),
        ],
    )?;
    fsck_clean(img)?;
    // What a child stored through its mapping and never msync'ed is on
    // the disk (written back at its last close, committed by umount).
    let cat = Command::new("/usr/sbin/debugfs")
        .args(["-R", "cat /rsetest-shared-kept"])
        .arg(img)
        .output()
        .map_err(|e| format!("debugfs: {e}"))?;
    if !cat.stdout.starts_with(b"kept-by-mmap") || cat.stdout.len() != 4096 {
        return Err(format!(
            "debugfs cat /rsetest-shared-kept: {} bytes, starting {:?}",
            cat.stdout.len(),
            String::from_utf8_lossy(&cat.stdout[..cat.stdout.len().min(16)])
        ));
    }
    Ok(())
}
