//! `blk_io_errors_eio`: a disk that returns I/O errors. QEMU's blkdebug
//! driver fails the requests its rules name with EIO, as a failing disk
//! does; the writer must get EIO and everything else keep working.
//!
//! 1. Raw device: writes touching one sector (10 MiB in) fail. A write
//!    there is EIO to `dd`; a write elsewhere succeeds and reads back;
//!    the failed region still reads.
//! 2. ext4, writes touching one sector fail: a file written across it
//!    gets EIO (at the write or its fsync), the file system still reads.
//! 3. ext4 on a disk that stops taking writes (every write fails): the
//!    mount is EIO, a read-only mount still reads.
//!
//! After each, the rest of the system (tmpfs, new processes) works.

use std::path::Path;

use crate::artifacts;
use crate::scenarios::exec_opts;
use crate::RunOpts;

/// blkdebug's rule for failing writes with EIO (errno 5), every time;
/// only those touching `sector` when given.
fn rules(sector: Option<u64>) -> String {
    let only = sector.map_or(String::new(), |s| format!("sector = \"{s}\"\n"));
    format!(
        "[inject-error]\nevent = \"write_aio\"\niotype = \"write\"\nerrno = \"5\"\n\
         {only}once = \"off\"\n"
    )
}

pub fn blk_io_errors_eio() -> Result<(), String> {
    let id = std::process::id();
    let dir = artifacts::out_dir().join(format!("blk-eio-{id}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let r = raw_device(&dir)
        .and_then(|()| ext4_mid_write(&dir))
        .and_then(|()| ext4_disk_gone(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn boot_with_rules(img: &Path, rules_file: &Path, cmd: &str, tag: &str) -> Result<String, String> {
    let opts = RunOpts {
        exec: Some(cmd.to_string()),
        disks: vec![img.to_path_buf()],
        disk_errors: Some(rules_file.to_path_buf()),
        ..Default::default()
    };
    let (console, st) = exec_opts(&opts, tag)?;
    if st != 0 {
        return Err(format!("guest status {st}:\n{console}"));
    }
    Ok(console)
}

fn raw_device(dir: &Path) -> Result<(), String> {
    let img = dir.join("raw.img");
    let cfg = dir.join("raw.cfg");
    std::fs::write(&img, vec![0x11u8; 32 << 20]).map_err(|e| e.to_string())?;
    std::fs::write(&cfg, rules(Some(20480))).map_err(|e| e.to_string())?;
    let cmd = "dd if=/dev/zero of=/dev/vda bs=4096 seek=2560 count=1 conv=fsync 2>&1 \
               | grep -q 'Input/output error' && echo bad-write-eio; \
               dd if=/dev/urandom of=/tmp/p bs=4096 count=1 2>/dev/null; \
               dd if=/tmp/p of=/dev/vda bs=4096 seek=1 count=1 conv=fsync 2>/dev/null \
               && echo good-write-ok; \
               dd if=/dev/vda bs=4096 skip=1 count=1 2>/dev/null | cmp -s - /tmp/p && echo read-back-ok; \
               dd if=/dev/vda bs=4096 skip=2560 count=1 2>/dev/null | wc -c; \
               echo alive > /tmp/a && cat /tmp/a";
    let console = boot_with_rules(&img, &cfg, cmd, "blk-eio-raw")?;
    let want = "bad-write-eio\ngood-write-ok\nread-back-ok\n4096\nalive";
    if console.trim() != want {
        return Err(format!("raw device: expected {want:?}:\n{console}"));
    }
    Ok(())
}

/// An ext4 image holding one file, `old`, made by the host.
fn ext4_image(dir: &Path, name: &str) -> Result<std::path::PathBuf, String> {
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).map_err(|e| e.to_string())?;
    std::fs::write(tree.join("old"), "written by the host\n").map_err(|e| e.to_string())?;
    let img = dir.join(name);
    crate::disk_image::mke2fs(&tree, &img, "32M")?;
    Ok(img)
}

/// What every ext4 part ends with: the old file reads, tmpfs takes a
/// write, a new process runs.
const STILL_WORKS: &str = "echo alive > /tmp/a && cat /tmp/a; sh -c 'echo child'";

/// Writes touching one sector 16 MiB into the disk fail: a 20 MiB file
/// written with `conv=fsync` crosses it, and dd must see EIO (at the
/// write or at its fsync); the file system still reads.
fn ext4_mid_write(dir: &Path) -> Result<(), String> {
    let img = ext4_image(dir, "mid.img")?;
    let cfg = dir.join("mid.cfg");
    std::fs::write(&cfg, rules(Some(32768))).map_err(|e| e.to_string())?;
    let cmd = format!(
        "mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d || exit 1; \
         dd if=/dev/zero of=/mnt/d/big bs=1048576 count=20 conv=fsync 2>&1 \
         | grep -q 'Input/output error' && echo write-eio; \
         cat /mnt/d/old; umount /mnt/d 2>/dev/null; {STILL_WORKS}"
    );
    let console = boot_with_rules(&img, &cfg, &cmd, "blk-eio-mid")?;
    let want = "write-eio\nwritten by the host\nalive\nchild";
    if console.trim() != want {
        return Err(format!(
            "ext4, a write that crosses a failing sector: expected {want:?}:\n{console}"
        ));
    }
    Ok(())
}

/// Every write fails (the disk is gone for writing): the mount, which
/// writes the superblock, is EIO; a read-only mount still reads.
fn ext4_disk_gone(dir: &Path) -> Result<(), String> {
    let img = ext4_image(dir, "gone.img")?;
    let cfg = dir.join("gone.cfg");
    std::fs::write(&cfg, rules(None)).map_err(|e| e.to_string())?;
    let cmd = format!(
        "mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d 2>&1 \
         | grep -q 'Input/output error' && echo mount-eio; \
         mount -o ro -t ext4 /dev/vda /mnt/d && cat /mnt/d/old && umount /mnt/d; {STILL_WORKS}"
    );
    let console = boot_with_rules(&img, &cfg, &cmd, "blk-eio-gone")?;
    let want = "mount-eio\nwritten by the host\nalive\nchild";
    if console.trim() != want {
        return Err(format!(
            "ext4 on a disk that fails every write: expected {want:?}:\n{console}"
        ));
    }
    Ok(())
}
