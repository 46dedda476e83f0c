//! Block-device scenarios: a raw disk image attached with `--disk`, written
//! and read by busybox in the guest, checked byte for byte on the host.

use std::path::PathBuf;
use std::process::Command;

use crate::qemu::Machine;
use crate::scenarios::exec_opts;
use crate::{artifacts, RunOpts};

const IMAGE_SIZE: usize = 4 << 20;
/// Where the guest writes its pattern (sector-aligned) and an unaligned
/// string (inside sectors it must read, patch and write back).
const PATTERN_AT: usize = 2 << 20;
const UNALIGNED_AT: usize = 3_000_001;
const UNALIGNED: &str = "unaligned";
/// A region of the host's fill the guest reads back and checksums.
const READ_AT: usize = 1 << 20;
const READ_LEN: usize = 64 << 10;

/// The host's fill: bytes no zeroed disk or misplaced sector would show.
fn fill() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..IMAGE_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What `seq 1 30000` prints.
fn seq() -> Vec<u8> {
    (1..=30000)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

fn md5(data: &[u8]) -> Result<String, String> {
    let tmp = artifacts::out_dir().join(format!("blk-md5-{}", std::process::id()));
    std::fs::write(&tmp, data).map_err(|e| e.to_string())?;
    let out = Command::new("md5sum").arg(&tmp).output();
    let _ = std::fs::remove_file(&tmp);
    let out = out.map_err(|e| format!("md5sum: {e}"))?;
    let s = String::from_utf8_lossy(&out.stdout);
    Ok(s.split_whitespace().next().unwrap_or_default().to_string())
}

/// busybox `dd` writes a pattern to /dev/vda (conv=fsync) and an unaligned
/// string; reads back the host's fill and its own pattern; a write past
/// the end fails with ENOSPC. The host then compares the whole image with
/// what it must hold.
pub fn dd_pattern(machine: Machine) -> Result<(), String> {
    let img: PathBuf = artifacts::out_dir().join(format!("blk-dd-{}.img", std::process::id()));
    let original = fill();
    std::fs::write(&img, &original).map_err(|e| format!("{}: {e}", img.display()))?;
    let result = run_dd(machine, &img, &original);
    let _ = std::fs::remove_file(&img);
    result
}

fn run_dd(machine: Machine, img: &std::path::Path, original: &[u8]) -> Result<(), String> {
    let pat = seq();
    let cmd = format!(
        "blockdev --getsize64 /dev/vda; \
         echo host-fill $(dd if=/dev/vda bs=4096 skip={rs} count={rc} 2>/dev/null | md5sum); \
         seq 1 30000 > /tmp/p; \
         dd if=/tmp/p of=/dev/vda bs=4096 seek={ps} conv=notrunc,fsync 2>/dev/null && echo dd-ok; \
         printf {UNALIGNED} | dd of=/dev/vda bs=1 seek={UNALIGNED_AT} conv=notrunc,fsync 2>/dev/null && echo dd-unaligned-ok; \
         dd if=/dev/vda bs=4096 skip={ps} count={pc} 2>/dev/null | head -c {plen} | cmp - /tmp/p && echo readback-ok; \
         dd if=/tmp/p of=/dev/vda bs=4096 seek={end} conv=notrunc 2>&1 | grep -q 'No space left' && echo enospc-ok; \
         sync",
        rs = READ_AT / 4096,
        rc = READ_LEN / 4096,
        ps = PATTERN_AT / 4096,
        pc = pat.len().div_ceil(4096),
        plen = pat.len(),
        end = IMAGE_SIZE / 4096,
    );
    let opts = RunOpts {
        exec: Some(cmd),
        machine: Some(machine),
        disks: vec![img.to_path_buf()],
        ..Default::default()
    };
    let (console, st) = exec_opts(&opts, "blk-dd")?;
    let want = [
        IMAGE_SIZE.to_string(),
        format!(
            "host-fill {} -",
            md5(&original[READ_AT..READ_AT + READ_LEN])?
        ),
        "dd-ok".into(),
        "dd-unaligned-ok".into(),
        "readback-ok".into(),
        "enospc-ok".into(),
    ];
    let lines: Vec<&str> = console.lines().collect();
    for w in &want {
        if !lines.contains(&w.as_str()) {
            return Err(format!("missing line {w:?} (status {st}):\n{console}"));
        }
    }
    let mut expect = original.to_vec();
    expect[PATTERN_AT..PATTERN_AT + pat.len()].copy_from_slice(&pat);
    expect[UNALIGNED_AT..UNALIGNED_AT + UNALIGNED.len()].copy_from_slice(UNALIGNED.as_bytes());
    let got = std::fs::read(img).map_err(|e| format!("{}: {e}", img.display()))?;
    if got.len() != expect.len() {
        return Err(format!(
            "image is {} bytes, not {}",
            got.len(),
            expect.len()
        ));
    }
    if let Some(i) = (0..got.len()).find(|&i| got[i] != expect[i]) {
        return Err(format!(
            "image byte {i} is {:#04x}, expected {:#04x}\n{console}",
            got[i], expect[i]
        ));
    }
    Ok(())
}

/// What the guest script prints about the tree under the current
/// directory: every name, each regular file's md5sum, each symlink's
/// target. The same script runs on the host (in the tree) for the
/// expected text.
const TREE_REPORT: &str = "find . ! -name lost+found ! -path './lost+found/*' | sort; \
     find . -type f ! -path './lost+found/*' | sort | while read f; do md5sum \"$f\"; done; \
     find . -type l | sort | while read l; do echo \"$l -> $(readlink \"$l\")\"; done";

/// A host tree with what an ext4 reader must get right: empty and
/// block-boundary sizes, a large file (several extents' worth), a sparse
/// file, a directory of many entries, nested directories, relative and
/// absolute symlinks, a name with spaces.
fn make_tree(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("a/b/c"))?;
    std::fs::create_dir_all(dir.join("many"))?;
    std::fs::create_dir_all(dir.join("empty dir"))?;
    let bytes = fill();
    for (name, len) in [
        ("zero", 0usize),
        ("one", 1),
        ("a/page-1", 4095),
        ("a/page", 4096),
        ("a/page+1", 4097),
        ("a/b/c/big", 1_500_000),
    ] {
        std::fs::write(dir.join(name), &bytes[..len])?;
    }
    for i in 0..600 {
        std::fs::write(dir.join(format!("many/file-{i:04}")), format!("{i}\n"))?;
    }
    let mut sparse = std::fs::File::create(dir.join("sparse"))?;
    sparse.seek(SeekFrom::Start(3 << 20))?;
    sparse.write_all(b"after the hole")?;
    std::fs::write(dir.join("with space.txt"), "spaces\n")?;
    symlink("a/b/c/big", dir.join("rel-link"))?;
    symlink("../../one", dir.join("a/b/up-link"))?;
    symlink("/mnt/d/a/page", dir.join("abs-link"))?;
    Ok(())
}

use std::os::unix::fs::symlink;

/// An ext4 image made on the host by `cargo xtask image --disk --dir`
/// (mke2fs -d) is mounted in the guest and read back byte for byte
/// (names, md5sums, symlink targets compared with the same script run on
/// the host tree); /proc/mounts, df and statfs see it; umount removes it.
pub fn ext4_read_tree() -> Result<(), String> {
    let id = std::process::id();
    let tree = artifacts::out_dir().join(format!("ext4-tree-{id}"));
    let img = artifacts::out_dir().join(format!("ext4-tree-{id}.img"));
    let r = make_tree(&tree)
        .map_err(|e| format!("{}: {e}", tree.display()))
        .and_then(|()| read_tree(&tree, &img));
    let _ = std::fs::remove_dir_all(&tree);
    let _ = std::fs::remove_file(&img);
    r
}

fn read_tree(tree: &std::path::Path, img: &std::path::Path) -> Result<(), String> {
    crate::disk_image::make(&crate::disk_image::DiskOpts {
        out: img.to_path_buf(),
        size: "64M".into(),
        pkgs: Vec::new(),
        dir: Some(tree.to_path_buf()),
    })?;
    let host = Command::new("sh")
        .arg("-c")
        .arg(TREE_REPORT)
        .current_dir(tree)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("sh: {e}"))?;
    let expect = String::from_utf8_lossy(&host.stdout).into_owned();
    let cmd = format!(
        "mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d && echo mounted; \
         cd /mnt/d && echo BEGIN && {{ {TREE_REPORT}; }} && echo END; cd /; \
         grep -c '^/dev/vda /mnt/d ext4 rw' /proc/mounts; \
         df /mnt/d | tail -1 | awk '{{print \"df\", $1, $6}}'; \
         echo fstype $(stat -f -c %t /mnt/d); \
         cat /mnt/d/abs-link | md5sum; \
         echo ro $(sh -c 'echo x > /mnt/d/new' 2>&1 | grep -c 'Read-only'); \
         umount /mnt/d && echo umounted; grep -c /mnt/d /proc/mounts; ls /mnt/d | wc -l"
    );
    let opts = RunOpts {
        exec: Some(cmd),
        disks: vec![img.to_path_buf()],
        ..Default::default()
    };
    let (console, st) = exec_opts(&opts, "ext4-read")?;
    let got = console
        .split("BEGIN\n")
        .nth(1)
        .and_then(|s| s.split("END\n").next())
        .ok_or(format!("no listing (status {st}):\n{console}"))?;
    if got != expect {
        let diff: Vec<String> = expect
            .lines()
            .zip(got.lines())
            .filter(|(a, b)| a != b)
            .take(5)
            .map(|(a, b)| format!("host:  {a}\nguest: {b}"))
            .collect();
        return Err(format!(
            "the guest read a different tree ({} lines vs {} on the host):\n{}\n{console}",
            got.lines().count(),
            expect.lines().count(),
            diff.join("\n")
        ));
    }
    let page = md5(&fill()[..4096])?;
    let want = [
        "mounted".to_string(),
        "1".into(),
        "df /dev/vda /mnt/d".into(),
        "fstype ef53".into(),
        format!("{page}  -"),
        "ro 1".into(),
        "umounted".into(),
        "0".into(),
    ];
    let lines: Vec<&str> = console.lines().collect();
    for w in &want {
        if !lines.contains(&w.as_str()) {
            return Err(format!("missing line {w:?} (status {st}):\n{console}"));
        }
    }
    Ok(())
}
