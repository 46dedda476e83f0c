//! Write-back caching of ext4 file writes (`kernel/src/fs/ext4_pages.rs`).
//!
//! `ext4_writeback_coherent`: `rsetest writeback` on a mount (overwrites
//! stay in dirty pages: /proc/meminfo's Dirty grows and the disk sees
//! few writes; other processes' read/mmap/stat, truncate and unlink see
//! the dirty data as the file's; fsync writes it back), then umount and
//! a clean `e2fsck -fn`.
//!
//! `ext4_writeback_power_cut`: dirty data reaches the disk without an
//! fsync. One boot leaves file `s` dirty and runs `sync`, then leaves
//! file `p` dirty and sleeps 8 s (the periodic write-back runs every
//! 5 s), and the host SIGKILLs QEMU. On a copy of the image the host's
//! `e2fsck -p` replays the journal, `e2fsck -fn` is clean, and `debugfs
//! -R 'cat …'` must give both files' new bytes. Before write-back
//! caching `p` was lost here: its writes sat uncommitted in the crate and
//! the buffer cache, nothing committed them without an fsync.
//!
//! The same boot checks fdatasync: file `r`, synced, is extended and
//! fdatasync'd (a commit), then `q`, synced, is overwritten in place and
//! fdatasync'd (the data-only path: no commit), and the cut comes right
//! after; both must hold every new byte, `r` its new size. File `o`,
//! synced, is overwritten through an O_DSYNC descriptor with no fsync
//! call, and `u` by one io_uring WRITE with RWF_DSYNC, before the cut:
//! both must hold the new bytes too.

use std::process::Command;
use std::time::Duration;

use crate::ext4_programs::{fsck_clean, rsetest_only, with_empty_image};
use crate::scenarios::{exec_opts, expect_lines};
use crate::RunOpts;

/// Bytes of each file `rsetest writeback_dirty` writes: 64 pages
/// rewritten, then 2 pages and 123 bytes appended.
const LEN: usize = 66 * 4096 + 123;
/// Bytes `rsetest datasync` appends (inside the file's last block: a
/// size change with no allocation).
const APPEND: usize = 3000;

/// Byte `i` of a file `rsetest writeback_dirty` wrote with `seed`.
fn byte(seed: u8, i: usize) -> u8 {
    ((i * 7 + usize::from(seed) * 13) % 251) as u8
}

pub fn ext4_writeback_coherent() -> Result<(), String> {
    with_empty_image("ext4-writeback", "64M", |img| {
        let opts = RunOpts {
            exec: Some(
                "mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d && echo mounted; \
                 rsetest writeback /mnt/d; echo \"writeback status $?\"; \
                 umount /mnt/d && echo umounted"
                    .into(),
            ),
            adds: rsetest_only()?,
            disks: vec![img.to_path_buf()],
            ..Default::default()
        };
        let (c, _) = exec_opts(&opts, "ext4-writeback")?;
        expect_lines(
            &c,
            &["mounted", "writeback status 0", "umounted"].map(String::from),
        )?;
        fsck_clean(img)
    })
}

const CUT_SCRIPT: &str = r#"
mkdir -p /mnt/d
mount -t ext4 /dev/vda /mnt/d && echo mounted
rsetest writeback_dirty /mnt/d/s 3 && sync && echo synced
rsetest writeback_dirty /mnt/d/q 5 && rsetest writeback_dirty /mnt/d/r 7 && rsetest writeback_dirty /mnt/d/o 10 && rsetest writeback_dirty /mnt/d/u 12 && sync && echo "synced q r o u"
rsetest writeback_dirty /mnt/d/p 4 && echo "dirty p left"
sleep 8
rsetest datasync /mnt/d/r 8 append
rsetest datasync /mnt/d/o 11 odsync
rsetest datasync /mnt/d/u 13 rwf_dsync
rsetest datasync /mnt/d/q 6
echo waited
sleep 600
"#;

pub fn ext4_writeback_power_cut() -> Result<(), String> {
    with_empty_image("ext4-wbcut", "64M", |img| {
        let mut cfg = RunOpts {
            exec: Some(CUT_SCRIPT.into()),
            adds: rsetest_only()?,
            ..Default::default()
        }
        .config("ext4-wbcut")?;
        cfg.disks = vec![img.to_path_buf()];
        let (lines, cut, _) =
            crate::ext4_powercut::boot_until_line(&cfg, Some(Duration::ZERO), "waited")?;
        let console = lines.join("\n");
        if !cut {
            return Err(format!("the guest stopped before the cut:\n{console}"));
        }
        let appended = format!("datasynced /mnt/d/r 8 {}", LEN + APPEND);
        let overwritten = format!("datasynced /mnt/d/q 6 {LEN}");
        let written_dsync = format!("datasynced /mnt/d/o 11 {LEN}");
        let written_rwf = format!("datasynced /mnt/d/u 13 {LEN}");
        expect_lines(
            &console,
            &[
                "mounted",
                "dirty /mnt/d/s 3",
                "synced",
                "dirty /mnt/d/q 5",
                "dirty /mnt/d/r 7",
                "dirty /mnt/d/o 10",
                "dirty /mnt/d/u 12",
                "synced q r o u",
                "dirty /mnt/d/p 4",
                "dirty p left",
                appended.as_str(),
                written_dsync.as_str(),
                written_rwf.as_str(),
                overwritten.as_str(),
                "waited",
            ]
            .map(String::from),
        )?;
        let copy = img.with_extension("copy.img");
        let r = crate::ext4_powercut::host_replay_clean(img, &copy)
            .and_then(|()| on_disk(&copy, "/s", &bytes(3, 0..LEN)))
            .and_then(|()| on_disk(&copy, "/p", &bytes(4, 0..LEN)))
            .and_then(|()| on_disk(&copy, "/q", &bytes(6, 0..LEN)))
            .and_then(|()| on_disk(&copy, "/o", &bytes(11, 0..LEN)))
            .and_then(|()| on_disk(&copy, "/u", &bytes(13, 0..LEN)))
            .and_then(|()| {
                let mut r = bytes(7, 0..LEN);
                r.extend(bytes(8, LEN..LEN + APPEND));
                on_disk(&copy, "/r", &r)
            });
        let _ = std::fs::remove_file(&copy);
        r
    })
}

/// Bytes `range` of a file written with `seed`.
fn bytes(seed: u8, range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(|i| byte(seed, i)).collect()
}

/// `debugfs -R 'cat FILE'` gives `want`.
fn on_disk(img: &std::path::Path, file: &str, want: &[u8]) -> Result<(), String> {
    let out = Command::new("/usr/sbin/debugfs")
        .arg("-R")
        .arg(format!("cat {file}"))
        .arg(img)
        .output()
        .map_err(|e| format!("debugfs: {e}"))?;
    let got = out.stdout;
    if got.len() != want.len() {
        return Err(format!(
            "{file} on the disk after the cut: {} bytes, want {}",
            got.len(),
            want.len()
        ));
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{file} on the disk after the cut: byte {i} is {:#x}, want {:#x}",
            got[i], want[i]
        )),
    }
}
