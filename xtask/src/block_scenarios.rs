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
    crate::artifacts::noise(IMAGE_SIZE, 0x9e37_79b9_7f4a_7c15)
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
         sed 's/^/stats0 /' /proc/diskstats; \
         echo host-fill $(dd if=/dev/vda bs=4096 skip={rs} count={rc} 2>/dev/null | md5sum); \
         seq 1 30000 > /tmp/p; \
         dd if=/tmp/p of=/dev/vda bs=4096 seek={ps} conv=notrunc,fsync 2>/dev/null && echo dd-ok; \
         printf {UNALIGNED} | dd of=/dev/vda bs=1 seek={UNALIGNED_AT} conv=notrunc,fsync 2>/dev/null && echo dd-unaligned-ok; \
         dd if=/dev/vda bs=4096 skip={ps} count={pc} 2>/dev/null | head -c {plen} | cmp - /tmp/p && echo readback-ok; \
         dd if=/tmp/p of=/dev/vda bs=4096 seek={end} conv=notrunc 2>&1 | grep -q 'No space left' && echo enospc-ok; \
         sync; \
         sed 's/^/stats1 /' /proc/diskstats",
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
    check_diskstats(&console, (READ_LEN + pat.len()) / 512, pat.len() / 512)?;
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

/// `/proc/diskstats` before (`stats0`) and after (`stats1`) the script:
/// Linux's 20 fields for vda (254:0), and the traffic the script made
/// counted: at least `read` sectors read, `written` written, and a flush
/// for each of its two `conv=fsync` writes and its `sync`.
fn check_diskstats(console: &str, read: usize, written: usize) -> Result<(), String> {
    let line = |tag: &str| -> Result<Vec<String>, String> {
        let l = console
            .lines()
            .find(|l| l.starts_with(tag) && l.split_whitespace().nth(3) == Some("vda"))
            .ok_or_else(|| format!("no {tag} line for vda in /proc/diskstats:\n{console}"))?;
        let w: Vec<String> = l.split_whitespace().skip(1).map(String::from).collect();
        if w.len() != 20 || w[0] != "254" || w[1] != "0" {
            return Err(format!(
                "/proc/diskstats line is not Linux's 20 fields for 254:0 vda: {l:?}"
            ));
        }
        Ok(w)
    };
    let (a, b) = (line("stats0")?, line("stats1")?);
    let n = |w: &[String], i: usize| w[i].parse::<u64>().unwrap_or(0);
    let delta = |i: usize| n(&b, i).saturating_sub(n(&a, i));
    // Fields after major, minor, name: 0 reads, 2 sectors read, 4
    // writes, 6 sectors written, 8 in flight, 15 flushes.
    let (rs, ws, fl, inflight) = (delta(3 + 2), delta(3 + 6), delta(3 + 15), n(&b, 3 + 8));
    if rs < read as u64 || ws < written as u64 || fl < 3 || inflight != 0 {
        return Err(format!(
            "/proc/diskstats counted {rs} sectors read (want >= {read}), {ws} written (>= {written}), \
             {fl} flushes (>= 3), {inflight} in flight (0):\n{console}"
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
/// the host tree); /proc/mounts, df and statfs see it; the mount is
/// read-only (`-o ro`: a write is EROFS); umount removes it.
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
        root: false,
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
        "mkdir -p /mnt/d && mount -o ro -t ext4 /dev/vda /mnt/d && echo mounted; \
         cd /mnt/d && echo BEGIN && {{ {TREE_REPORT}; }} && echo END; cd /; \
         grep -c '^/dev/vda /mnt/d ext4 ro' /proc/mounts; \
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

/// The guest writes to an ext4 image made on the host: a tree built in
/// its tmpfs (busybox's binary, random data, 200 small files, nested
/// directories, symlinks, a hard link) copied with `cp -a`, plus rename,
/// unlink, rmdir, truncate, append, chmod on the host's files; sync and
/// umount. On the host `e2fsck -fn` must find the file system clean and
/// `debugfs rdump` must give back what the guest wrote (its listing,
/// md5sums and link targets compared with the guest's of its source).
pub fn ext4_write_tree() -> Result<(), String> {
    let id = std::process::id();
    let tree = artifacts::out_dir().join(format!("ext4-wtree-{id}"));
    let img = artifacts::out_dir().join(format!("ext4-wtree-{id}.img"));
    let dump = artifacts::out_dir().join(format!("ext4-wdump-{id}"));
    let r = make_tree(&tree)
        .map_err(|e| format!("{}: {e}", tree.display()))
        .and_then(|()| write_tree(&tree, &img, &dump));
    let _ = std::fs::remove_dir_all(&tree);
    let _ = std::fs::remove_dir_all(&dump);
    let _ = std::fs::remove_file(&img);
    r
}

/// `rm -r` of a directory of 2,000 files on ext4 (an htree directory):
/// busybox reads a chunk of entries, unlinks them, reads on. getdents
/// resumed by entry index and skipped as many entries as had been
/// unlinked: about 1,200 files were left and rmdir failed ("Directory not
/// empty"). Also `ls | wc -l` while files are renamed, and e2fsck -fn.
pub fn ext4_rm_r_large_directory() -> Result<(), String> {
    crate::ext4_programs::with_empty_image("ext4-rmr", "64M", rm_r_on)
}

fn rm_r_on(img: &std::path::Path) -> Result<(), String> {
    let cmd = "mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d || exit 1; \
         mkdir /mnt/d/big; cd /mnt/d/big; i=0; \
         while [ $i -lt 2000 ]; do : > file_with_a_longish_name_$i; i=$((i+1)); done; \
         echo made $(ls | wc -l); cd /; rm -r /mnt/d/big && echo removed; \
         [ -e /mnt/d/big ] && echo left $(ls /mnt/d/big | wc -l); \
         umount /mnt/d && echo umounted";
    let opts = RunOpts {
        exec: Some(cmd.to_string()),
        disks: vec![img.to_path_buf()],
        ..Default::default()
    };
    let (console, st) = exec_opts(&opts, "ext4-rmr")?;
    let lines: Vec<&str> = console.lines().map(str::trim).collect();
    if st != 0 || lines != ["made 2000", "removed", "umounted"] {
        return Err(format!(
            "guest status {st}, expected made 2000/removed/umounted:\n{console}"
        ));
    }
    e2fsck_clean(img)
}

/// Renames that add a name to the source's own directory where the
/// insertion moves the source's entry. A leaf split of an htree directory
/// re-sorts the leaf by hash and moves half of it to a new block; a full
/// one-block directory is converted to an htree (its entries move to two
/// new leaves). rsext4 0.9.2 removed the old name at the location found
/// before the insertion: such a rename failed with ENOENT after a split (a
/// directory of 3,000 files first showed it, in some runs only: it depends
/// on the image's hash seed) or EUCLEAN after a conversion, and was rolled
/// back. Here: 15 one-block directories filled with 100-byte names up to
/// and past the point where one more does not fit, each then renaming its
/// first file (one of them converts, whatever the seed); and 400 short
/// names each renamed to a 200-byte one (1 to 11 failures in each of 20
/// seeds tried on the host before the fix). Every rename must succeed and
/// every name be where it should; e2fsck -fn on the host.
pub fn ext4_rename_htree_split() -> Result<(), String> {
    crate::ext4_programs::with_empty_image("ext4-mvsplit", "64M", rename_split_on)
}

fn rename_split_on(img: &std::path::Path) -> Result<(), String> {
    let p = "a".repeat(96);
    let cmd = format!(
        "mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d || exit 1; P={p}; f=0; n=30; \
         while [ $n -lt 45 ]; do mkdir /mnt/d/c$n; cd /mnt/d/c$n; i=0; \
         while [ $i -lt $n ]; do : > ${{P}}_o$i; i=$((i+1)); done; \
         mv ${{P}}_o0 ${{P}}_n0 || f=$((f+1)); \
         [ \"$(ls | grep -c _o)\" = $((n-1)) ] && [ -e ${{P}}_n0 ] || f=$((f+100)); \
         n=$((n+1)); done; echo convert_fails $f; \
         L=$P$P; mkdir /mnt/d/s; cd /mnt/d/s; i=0; \
         while [ $i -lt 400 ]; do : > f$i; i=$((i+1)); done; f=0; i=0; \
         while [ $i -lt 400 ]; do mv f$i ${{L}}_$i || f=$((f+1)); i=$((i+1)); done; \
         echo split_fails $f old $(ls | grep -c '^f') new $(ls | grep -c '^a'); \
         cd /; umount /mnt/d && echo umounted"
    );
    let opts = RunOpts {
        exec: Some(cmd),
        disks: vec![img.to_path_buf()],
        ..Default::default()
    };
    let (console, st) = exec_opts(&opts, "ext4-mvsplit")?;
    let lines: Vec<&str> = console.lines().map(str::trim).collect();
    let want = ["convert_fails 0", "split_fails 0 old 0 new 400", "umounted"];
    if st != 0 || lines != want {
        return Err(format!("guest status {st}, expected {want:?}:\n{console}"));
    }
    e2fsck_clean(img)
}

/// relatime, Linux's default: a read moves atime only when atime is not
/// newer than mtime or ctime (or is a day old). rsext4 moved it at every
/// read that reached it (strictatime: "second 0" here), journalling the
/// inode each time. Every read below reaches the crate (a remount empties
/// the page cache), a second apart: the first after the file is written
/// moves atime, the next must not, and one after an append moves it
/// again.
pub fn ext4_relatime() -> Result<(), String> {
    crate::ext4_programs::with_empty_image("ext4-relatime", "64M", relatime_on)
}

fn relatime_on(img: &std::path::Path) -> Result<(), String> {
    let cmd = "mkdir -p /mnt/d; M='mount -t ext4 /dev/vda /mnt/d'; R='umount /mnt/d; sleep 1; $M';          $M || exit 1; cd /; f=/mnt/d/f;          echo x > $f; m0=$(stat -c %Y $f); eval $R;          cat $f > /dev/null; a1=$(stat -c %X $f); eval $R;          cat $f > /dev/null; a2=$(stat -c %X $f);          echo y >> $f; m1=$(stat -c %Y $f); eval $R;          cat $f > /dev/null; a3=$(stat -c %X $f); umount /mnt/d &&          echo \"first $((a1 > m0)) second $((a2 == a1)) after_write $((a3 > m1))\"";
    let opts = RunOpts {
        exec: Some(cmd.to_string()),
        disks: vec![img.to_path_buf()],
        ..Default::default()
    };
    let (console, st) = exec_opts(&opts, "ext4-relatime")?;
    let want = "first 1 second 1 after_write 1";
    if st != 0 || console.trim() != want {
        return Err(format!("guest status {st}, expected {want:?}:\n{console}"));
    }
    e2fsck_clean(img)
}

/// The host's `e2fsck -fn` finds `img` clean.
fn e2fsck_clean(img: &std::path::Path) -> Result<(), String> {
    let fsck = Command::new("/usr/sbin/e2fsck")
        .arg("-fn")
        .arg(img)
        .output()
        .map_err(|e| format!("e2fsck: {e}"))?;
    if !fsck.status.success() {
        return Err(format!(
            "e2fsck -fn: status {:?}\n{}{}",
            fsck.status.code(),
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        ));
    }
    Ok(())
}

fn write_tree(
    tree: &std::path::Path,
    img: &std::path::Path,
    dump: &std::path::Path,
) -> Result<(), String> {
    crate::disk_image::make(&crate::disk_image::DiskOpts {
        out: img.to_path_buf(),
        size: "64M".into(),
        pkgs: Vec::new(),
        root: false,
        dir: Some(tree.to_path_buf()),
    })?;
    let cmd = format!(
        "set -e; mkdir -p /tmp/src/x/y/z; cd /tmp/src; \
         cp /bin/busybox x/busybox; dd if=/dev/urandom of=x/y/random bs=1000 count=300 2>/dev/null; \
         seq 1 100000 > x/y/z/seq; for i in $(seq 1 200); do echo file $i > x/small-$i; done; \
         ln -s y/z/seq x/link; ln -s /etc/passwd abs; ln x/busybox x/hard; : > empty; chmod 640 x/y/random; \
         mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d; \
         cp -a /tmp/src /mnt/d/copied; \
         mv /mnt/d/one /mnt/d/a/moved; rm /mnt/d/zero; rmdir '/mnt/d/empty dir'; \
         rm /mnt/d/many/file-0007 /mnt/d/many/file-0300; \
         echo appended >> /mnt/d/with\\ space.txt; \
         dd if=/dev/zero of=/mnt/d/a/page bs=100 count=1 conv=fsync 2>/dev/null; \
         echo BEGIN; {TREE_REPORT}; echo END; cd /; sync; umount /mnt/d; echo umounted"
    );
    let opts = RunOpts {
        exec: Some(cmd),
        disks: vec![img.to_path_buf()],
        ..Default::default()
    };
    let (console, st) = exec_opts(&opts, "ext4-write")?;
    if st != 0 || !console.contains("umounted") {
        return Err(format!("guest status {st}:\n{console}"));
    }
    let guest = console
        .split("BEGIN\n")
        .nth(1)
        .and_then(|s| s.split("END\n").next())
        .ok_or(format!("no listing:\n{console}"))?;
    e2fsck_clean(img)?;
    let _ = std::fs::remove_dir_all(dump);
    std::fs::create_dir_all(dump).map_err(|e| e.to_string())?;
    let rd = Command::new("/usr/sbin/debugfs")
        .arg("-R")
        .arg(format!("rdump / {}", dump.display()))
        .arg(img)
        .output()
        .map_err(|e| format!("debugfs: {e}"))?;
    if !rd.status.success() {
        return Err(format!(
            "debugfs rdump failed: {}",
            String::from_utf8_lossy(&rd.stderr)
        ));
    }
    let host = Command::new("sh")
        .arg("-c")
        .arg(TREE_REPORT)
        .current_dir(dump.join("copied"))
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("sh: {e}"))?;
    let host = String::from_utf8_lossy(&host.stdout);
    if host != guest {
        let diff: Vec<String> = guest
            .lines()
            .zip(host.lines())
            .filter(|(a, b)| a != b)
            .take(5)
            .map(|(a, b)| format!("guest: {a}\nimage: {b}"))
            .collect();
        return Err(format!(
            "debugfs rdump differs from what the guest wrote ({} vs {} lines):\n{}",
            guest.lines().count(),
            host.lines().count(),
            diff.join("\n")
        ));
    }
    // The changes to the host's own files.
    let read = |p: &str| std::fs::read(dump.join(p)).map_err(|e| format!("image {p}: {e}"));
    let exists = |p: &str| dump.join(p).symlink_metadata().is_ok();
    let checks = [
        (read("a/moved")? == fill()[..1], "a/moved holds one's byte"),
        (
            !exists("one") && !exists("zero") && !exists("empty dir"),
            "one, zero and 'empty dir' are gone",
        ),
        (
            !exists("many/file-0007") && exists("many/file-0008"),
            "many/file-0007 unlinked, its neighbour kept",
        ),
        (
            read("with space.txt")? == b"spaces\nappended\n",
            "the append",
        ),
        (
            read("a/page")? == [0u8; 100],
            "a/page truncated and rewritten",
        ),
    ];
    for (ok, what) in checks {
        if !ok {
            return Err(format!("on the image: {what} — not so"));
        }
    }
    Ok(())
}

/// What `sync` promises without an unmount: the guest writes a file,
/// syncs and stops (no umount, so the changes are in the journal). The
/// image then needs recovery: RSE OS replays the journal at its next
/// mount and reads the file back; on a copy, `e2fsck -p` replays it and
/// `e2fsck -fn` is then clean, and debugfs reads the file.
pub fn ext4_sync_replay() -> Result<(), String> {
    let id = std::process::id();
    let empty = artifacts::out_dir().join(format!("ext4-empty-{id}"));
    let img = artifacts::out_dir().join(format!("ext4-sync-{id}.img"));
    let copy = artifacts::out_dir().join(format!("ext4-sync-{id}-copy.img"));
    let r = std::fs::create_dir_all(&empty)
        .map_err(|e| e.to_string())
        .and_then(|()| sync_replay(&empty, &img, &copy));
    let _ = std::fs::remove_dir_all(&empty);
    let _ = std::fs::remove_file(&img);
    let _ = std::fs::remove_file(&copy);
    r
}

fn sync_replay(
    empty: &std::path::Path,
    img: &std::path::Path,
    copy: &std::path::Path,
) -> Result<(), String> {
    crate::disk_image::make(&crate::disk_image::DiskOpts {
        out: img.to_path_buf(),
        size: "32M".into(),
        pkgs: Vec::new(),
        root: false,
        dir: Some(empty.to_path_buf()),
    })?;
    let run = |cmd: &str| {
        let opts = RunOpts {
            exec: Some(cmd.to_string()),
            disks: vec![img.to_path_buf()],
            ..Default::default()
        };
        exec_opts(&opts, "ext4-sync")
    };
    let (c, st) = run("set -e; mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d; \
         mkdir /mnt/d/dir; seq 1 50000 > /mnt/d/dir/seq; sync; echo synced")?;
    if st != 0 || !c.contains("synced") {
        return Err(format!("first boot: status {st}\n{c}"));
    }
    std::fs::copy(img, copy).map_err(|e| e.to_string())?;
    // RSE OS replays its own journal.
    let (c, st) = run(
        "mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d && md5sum < /mnt/d/dir/seq; umount /mnt/d",
    )?;
    let want = md5(&seq_n(50000))?;
    if st != 0 || !c.lines().any(|l| l == format!("{want}  -")) {
        return Err(format!(
            "second boot did not read the file back (status {st}):\n{c}"
        ));
    }
    // e2fsck replays it on the copy.
    let fsck = |args: &[&str]| {
        Command::new("/usr/sbin/e2fsck")
            .args(args)
            .arg(copy)
            .output()
            .map_err(|e| format!("e2fsck: {e}"))
    };
    let p = fsck(&["-p"])?;
    if !matches!(p.status.code(), Some(0) | Some(1)) {
        return Err(format!(
            "e2fsck -p: {:?}\n{}",
            p.status.code(),
            String::from_utf8_lossy(&p.stdout)
        ));
    }
    for image in [copy, img] {
        let n = Command::new("/usr/sbin/e2fsck")
            .arg("-fn")
            .arg(image)
            .output()
            .map_err(|e| format!("e2fsck: {e}"))?;
        if !n.status.success() {
            return Err(format!(
                "e2fsck -fn {}: {:?}\n{}",
                image.display(),
                n.status.code(),
                String::from_utf8_lossy(&n.stdout)
            ));
        }
    }
    let cat = Command::new("/usr/sbin/debugfs")
        .args(["-R", "cat /dir/seq"])
        .arg(copy)
        .output()
        .map_err(|e| format!("debugfs: {e}"))?;
    if cat.stdout != seq_n(50000) {
        return Err("debugfs cat /dir/seq after e2fsck -p: not what the guest wrote".into());
    }
    Ok(())
}

fn seq_n(n: u32) -> Vec<u8> {
    (1..=n)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Damaged images: eight copies of an image made on the host, each with
/// bytes overwritten (seeded) in its superblock, group descriptors, inode
/// table or anywhere in its first blocks, attached at once (vda…vdh).
/// Mount refuses (EUCLEAN, EINVAL) or the damaged files report errors;
/// walking, reading, writing and removing in what mounts never brings the
/// kernel down, and every mount that succeeded unmounts.
pub fn ext4_corrupt_images() -> Result<(), String> {
    let id = std::process::id();
    let tree = artifacts::out_dir().join(format!("ext4-ctree-{id}"));
    let base = artifacts::out_dir().join(format!("ext4-cbase-{id}.img"));
    let imgs: Vec<PathBuf> = (0..8)
        .map(|k| artifacts::out_dir().join(format!("ext4-c{k}-{id}.img")))
        .collect();
    let r = make_tree(&tree)
        .map_err(|e| format!("{}: {e}", tree.display()))
        .and_then(|()| corrupt_run(&tree, &base, &imgs));
    let _ = std::fs::remove_dir_all(&tree);
    let _ = std::fs::remove_file(&base);
    for i in &imgs {
        let _ = std::fs::remove_file(i);
    }
    r
}

fn corrupt_run(
    tree: &std::path::Path,
    base: &std::path::Path,
    imgs: &[PathBuf],
) -> Result<(), String> {
    crate::disk_image::make(&crate::disk_image::DiskOpts {
        out: base.to_path_buf(),
        size: "16M".into(),
        pkgs: Vec::new(),
        root: false,
        dir: Some(tree.to_path_buf()),
    })?;
    let dump = Command::new("/usr/sbin/dumpe2fs")
        .arg(base)
        .output()
        .map_err(|e| format!("dumpe2fs: {e}"))?;
    let text = String::from_utf8_lossy(&dump.stdout);
    let itable: usize = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Inode table at "))
        .and_then(|s| s.split('-').next())
        .and_then(|s| s.trim().parse().ok())
        .ok_or("dumpe2fs: no inode table")?;
    let data = std::fs::read(base).map_err(|e| e.to_string())?;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for (k, img) in imgs.iter().enumerate() {
        let (start, len, count) = match k {
            0 | 1 => (1024, 1024, 8),
            2 => (4096, 4096, 64),
            3..=5 => (itable * 4096, 64 * 256, 200),
            _ => (0, 4096 * 200, 400),
        };
        let mut d = data.clone();
        for _ in 0..count {
            let i = start + rnd(len);
            d[i] = rnd(256) as u8;
        }
        std::fs::write(img, &d).map_err(|e| e.to_string())?;
    }
    let cmd = "for d in a b c d e f g h; do mkdir -p /mnt/$d; \
         if mount -t ext4 /dev/vd$d /mnt/$d 2>/dev/null; then \
           ls -lR /mnt/$d >/dev/null 2>&1; \
           find /mnt/$d -type f 2>/dev/null | while read f; do head -c 65536 \"$f\" > /dev/null 2>&1; done; \
           echo x > /mnt/$d/new 2>/dev/null; mkdir /mnt/$d/nd 2>/dev/null; rm -rf /mnt/$d/a 2>/dev/null; \
           umount /mnt/$d && echo vd$d mounted-and-unmounted; \
         else echo vd$d refused; fi; done; echo survived";
    let opts = RunOpts {
        exec: Some(cmd.into()),
        disks: imgs.to_vec(),
        ..Default::default()
    };
    let (console, st) = exec_opts(&opts, "ext4-corrupt")?;
    let lines: Vec<&str> = console.lines().collect();
    for d in "abcdefgh".chars() {
        let ok = [
            format!("vd{d} refused"),
            format!("vd{d} mounted-and-unmounted"),
        ];
        if !lines.iter().any(|l| ok.iter().any(|o| l == o)) {
            return Err(format!(
                "vd{d}: neither refused nor unmounted (status {st}):\n{console}"
            ));
        }
    }
    if !lines.contains(&"survived") || st != 0 {
        return Err(format!("status {st}:\n{console}"));
    }
    Ok(())
}
