//! `ext4_bulk_tree_debugfs`: what issue 16 asks of a tree written on RSE
//! OS, checked on the host with e2fsprogs. The guest writes, on an empty
//! ext4 image: 10,000 small files in one directory, Debian's coreutils
//! package tree from a tar (busybox `tar -x`), a 1 GiB and a 5 GiB sparse
//! file (a block at each end: 64-bit sizes, logical blocks past 2^20),
//! then fills the disk until ENOSPC and removes the filler. The host then
//! requires `e2fsck -fn` clean, `debugfs rdump` to give back the small
//! files and the package tree byte for byte (contents, symlink targets,
//! permission bits), and the sparse files' size, their written blocks
//! (found with debugfs `bmap`, read from the image) and their holes.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::artifacts::{self, Addition};
use crate::scenarios::exec_opts;
use crate::RunOpts;

/// Small files in one directory.
const SMALL: usize = 10_000;
/// The sparse files: name, size in bytes.
const SPARSE: [(&str, u64); 2] = [("sparse1g", 1 << 30), ("sparse5g", 5 << 30)];
/// What the last bytes of a sparse file say (its first block holds its
/// name).
const TAIL: &str = "tail";

pub fn ext4_bulk_tree_debugfs() -> Result<(), String> {
    let pkg = crate::debian::prepare(&["coreutils".to_string()])?
        .into_iter()
        .find(|u| u.name == "coreutils")
        .ok_or("coreutils not among the packages prepared")?;
    let id = std::process::id();
    let tar = artifacts::out_dir().join(format!("ext4-bulk-{id}.tar"));
    let dump = artifacts::out_dir().join(format!("ext4-bulk-dump-{id}"));
    let r = make_tar(&pkg.tree, &tar).and_then(|()| {
        crate::ext4_programs::with_empty_image("ext4-bulk", "160M", |img| {
            write_and_check(img, &tar, &pkg.tree, &dump)
        })
    });
    let _ = std::fs::remove_file(&tar);
    let _ = std::fs::remove_dir_all(&dump);
    r
}

/// A tar of the package tree, as `dpkg-deb --fsys-tarfile` gives one.
fn make_tar(tree: &Path, tar: &Path) -> Result<(), String> {
    let st = Command::new("tar")
        .args(["--numeric-owner", "-cf"])
        .arg(tar)
        .arg("-C")
        .arg(tree)
        .arg(".")
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !st.success() {
        return Err(format!("tar of {}: {st}", tree.display()));
    }
    Ok(())
}

fn write_and_check(img: &Path, tar: &Path, tree: &Path, dump: &Path) -> Result<(), String> {
    let sparse: String = SPARSE
        .iter()
        .map(|(name, size)| {
            let at = size - TAIL.len() as u64;
            format!(
                "echo {name} > /mnt/d/{name}; \
                 printf {TAIL} | dd of=/mnt/d/{name} bs=1 seek={at} conv=notrunc 2>/dev/null; "
            )
        })
        .collect();
    let cmd = format!(
        "mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d || exit 1; \
         mkdir /mnt/d/many; cd /mnt/d/many; i=0; \
         while [ $i -lt {SMALL} ]; do echo \"small file $i\" > f$i; i=$((i+1)); done; cd /; \
         echo small $(ls /mnt/d/many | wc -l); \
         mkdir /mnt/d/pkg; tar -xf /pkg.tar -C /mnt/d/pkg && echo untarred; \
         {sparse}ls -l /mnt/d/sparse5g | awk '{{print \"size\", $5}}'; \
         dd if=/dev/zero of=/mnt/d/fill bs=65536 2>&1 | grep -q 'No space left' && echo enospc; \
         rm /mnt/d/fill; sync; umount /mnt/d && echo umounted"
    );
    let opts = RunOpts {
        exec: Some(cmd),
        disks: vec![img.to_path_buf()],
        adds: vec![Addition {
            host: tar.to_path_buf(),
            guest: "/pkg.tar".into(),
        }],
        ..Default::default()
    };
    let (console, st) = exec_opts(&opts, "ext4-bulk")?;
    let want = format!(
        "small {SMALL}\nuntarred\nsize {}\nenospc\numounted",
        SPARSE[1].1
    );
    if st != 0 || console.trim() != want {
        return Err(format!("guest status {st}, expected {want:?}:\n{console}"));
    }
    crate::ext4_programs::fsck_clean(img)?;
    std::fs::create_dir_all(dump).map_err(|e| e.to_string())?;
    debugfs(img, &format!("rdump /many /pkg {}", dump.display()))?;
    for i in 0..SMALL {
        let p = dump.join(format!("many/f{i}"));
        let got = std::fs::read(&p).map_err(|e| format!("image many/f{i}: {e}"))?;
        if got != format!("small file {i}\n").as_bytes() {
            return Err(format!(
                "image many/f{i}: {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
    }
    let n = same_tree(tree, &dump.join("pkg"))?;
    if n < 100 {
        return Err(format!("the package tree has only {n} entries"));
    }
    for (name, size) in SPARSE {
        check_sparse(img, name, size)?;
    }
    Ok(())
}

/// Runs one debugfs request on `img` (read-only); its standard output.
fn debugfs(img: &Path, request: &str) -> Result<String, String> {
    let out = Command::new("/usr/sbin/debugfs")
        .arg("-R")
        .arg(request)
        .arg(img)
        .output()
        .map_err(|e| format!("debugfs: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "debugfs {request}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every entry under `want` is under `got` with the same type,
/// permission bits, bytes or link target; and nothing more. The number
/// of entries.
fn same_tree(want: &Path, got: &Path) -> Result<usize, String> {
    let mut n = 0;
    let mut names = |d: &Path| -> Result<Vec<std::ffi::OsString>, String> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .map(|e| e.map(|e| e.file_name()).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        v.sort();
        n += v.len();
        Ok(v)
    };
    let mut todo = vec![(want.to_path_buf(), got.to_path_buf())];
    while let Some((w, g)) = todo.pop() {
        let (wn, gn) = (names(&w)?, names(&g)?);
        if wn != gn {
            return Err(format!(
                "{}: entries {wn:?} in the package, {gn:?} on the image",
                g.display()
            ));
        }
        for name in wn {
            let (wp, gp) = (w.join(&name), g.join(&name));
            let meta = |p: &Path| {
                p.symlink_metadata()
                    .map_err(|e| format!("{}: {e}", p.display()))
            };
            let (wm, gm) = (meta(&wp)?, meta(&gp)?);
            let differs = |what: &str| Err(format!("{}: {what} differs", gp.display()));
            if wm.file_type() != gm.file_type() {
                return differs("type");
            }
            if wm.file_type().is_symlink() {
                if std::fs::read_link(&wp).ok() != std::fs::read_link(&gp).ok() {
                    return differs("link target");
                }
                continue;
            }
            if wm.permissions().mode() & 0o7777 != gm.permissions().mode() & 0o7777 {
                return differs("mode");
            }
            if wm.is_dir() {
                todo.push((wp, gp));
            } else if std::fs::read(&wp).ok() != std::fs::read(&gp).ok() {
                return differs("content");
            }
        }
    }
    Ok(n)
}

/// The sparse file `name` on `img`: its size, its first block (its name)
/// and last bytes read from the image where debugfs's `bmap` says they
/// are, and a hole in the middle.
fn check_sparse(img: &Path, name: &str, size: u64) -> Result<(), String> {
    let stat = debugfs(img, &format!("stat /{name}"))?;
    if !stat.contains(&format!("Size: {size}")) {
        return Err(format!("/{name} on the image is not {size} bytes:\n{stat}"));
    }
    let block_size = 4096u64;
    let last = (size - 1) / block_size;
    let phys = |lblk: u64| -> Result<u64, String> {
        debugfs(img, &format!("bmap /{name} {lblk}"))?
            .trim()
            .parse()
            .map_err(|e| format!("bmap /{name} {lblk}: {e}"))
    };
    let mut f = std::fs::File::open(img).map_err(|e| e.to_string())?;
    let mut read_at = |pblk: u64, off: u64, len: usize| -> Result<Vec<u8>, String> {
        let mut b = vec![0u8; len];
        f.seek(SeekFrom::Start(pblk * block_size + off))
            .and_then(|_| f.read_exact(&mut b))
            .map_err(|e| e.to_string())?;
        Ok(b)
    };
    let head = read_at(phys(0)?, 0, name.len() + 1)?;
    let tail_off = (size - TAIL.len() as u64) % block_size;
    let tail = read_at(phys(last)?, tail_off, TAIL.len())?;
    let hole = phys(last / 2)?;
    if head != format!("{name}\n").as_bytes() || tail != TAIL.as_bytes() || hole != 0 {
        return Err(format!(
            "/{name}: first block {:?}, last bytes {:?}, middle block mapped at {hole} (want a hole)",
            String::from_utf8_lossy(&head),
            String::from_utf8_lossy(&tail)
        ));
    }
    Ok(())
}
