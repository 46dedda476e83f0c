//! Unpacking newc archives like the one xtask/src/initramfs.rs writes.

mod common;

use abi::Errno;
use common::*;
use proptest::prelude::*;
use vfs::cpio::{unpack, UnpackStats};
use vfs::devnum::makedev;
use vfs::{FileType, Timespec, Tmpfs, TmpfsConfig, ROOT_INO};

/// One archive entry, field for field.
#[derive(Clone)]
struct E<'a> {
    ino: u32,
    mode: u32,
    uid: u32,
    nlink: u32,
    mtime: u32,
    rdev: (u32, u32),
    name: &'a str,
    data: &'a [u8],
}

fn e<'a>(ino: u32, mode: u32, name: &'a str, data: &'a [u8]) -> E<'a> {
    let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
    E {
        ino,
        mode,
        uid: 0,
        nlink,
        mtime: 0,
        rdev: (0, 0),
        name,
        data,
    }
}

/// Serialises entries as newc with `magic`, as xtask's `push_entry` does.
fn archive_with(magic: &str, entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    let trailer = e(0, 0, "TRAILER!!!", b"");
    for x in entries.iter().chain(std::iter::once(&trailer)) {
        let fields = [
            x.ino,
            x.mode,
            x.uid,
            x.uid + 1,
            x.nlink,
            x.mtime,
            x.data.len() as u32,
            0,
            0,
            x.rdev.0,
            x.rdev.1,
            x.name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(magic.as_bytes());
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(x.name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(x.data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    out
}

fn archive(entries: &[E]) -> Vec<u8> {
    archive_with("070701", entries)
}

fn sample() -> Vec<u8> {
    archive(&[
        e(1, 0o040755, "bin", b""),
        E {
            mtime: 1_700_000_000,
            uid: 5,
            ..e(2, 0o100755, "bin/busybox", b"\x7fELF...")
        },
        e(3, 0o120777, "bin/sh", b"busybox"),
        e(4, 0o040755, "dev", b""),
        E {
            rdev: (5, 1),
            ..e(5, 0o020600, "dev/console", b"")
        },
        e(6, 0o010644, "dev/fifo", b""),
        e(7, 0o100644, "etc/deep/missing/parents", b"hello"),
    ])
}

#[test]
fn unpacks_what_xtask_writes() {
    let mut fs = fs();
    let stats = unpack(&mut fs, ROOT_INO, &sample()).unwrap();
    assert_eq!(
        stats,
        UnpackStats {
            entries: 7,
            files: 2,
            dirs: 2,
            symlinks: 1,
            nodes: 2,
            hard_links: 0,
            bytes: 12
        }
    );
    let bb = resolve(&fs, b"/bin/busybox").unwrap();
    assert_eq!(read_all(&mut fs, bb), b"\x7fELF...");
    let st = fs.stat(bb).unwrap();
    assert_eq!(
        (st.mode, st.uid, st.gid, st.mtime.sec),
        (0o100755, 5, 6, 1_700_000_000)
    );
    assert_eq!(
        resolve(&fs, b"/bin/sh"),
        Ok(bb),
        "symlink resolves to busybox"
    );
    let sh = fs.lookup(ROOT_INO, b"/bin/sh", false).unwrap();
    assert_eq!(fs.readlink(sh), Ok(b"busybox".to_vec()));
    let con = resolve(&fs, b"/dev/console").unwrap();
    let st = fs.stat(con).unwrap();
    assert_eq!((st.mode, st.rdev), (0o020600, u64::from(makedev(5, 1))));
    assert_eq!(
        fs.file_type(resolve(&fs, b"/dev/fifo").unwrap()),
        Ok(FileType::Fifo)
    );
    let p = resolve(&fs, b"/etc/deep/missing/parents").unwrap();
    assert_eq!(read_all(&mut fs, p), b"hello");
    assert_eq!(
        fs.stat(resolve(&fs, b"/etc/deep").unwrap()).unwrap().mode,
        0o040755
    );
    fs.fsck().unwrap();
}

#[test]
fn directory_mtime_survives_later_entries() {
    let mut fs = fs();
    let a = archive(&[
        E {
            mtime: 42,
            ..e(1, 0o040700, "d", b"")
        },
        e(2, 0o100644, "d/f", b"x"),
    ]);
    unpack(&mut fs, ROOT_INO, &a).unwrap();
    let st = fs.stat(resolve(&fs, b"/d").unwrap()).unwrap();
    assert_eq!((st.mode, st.mtime.sec), (0o040700, 42));
}

#[test]
fn root_entry_and_leading_slashes() {
    let mut fs = fs();
    let a = archive(&[
        e(1, 0o040700, ".", b""),
        e(2, 0o100644, "./x", b"1"),
        e(3, 0o100644, "/y", b"2"),
    ]);
    unpack(&mut fs, ROOT_INO, &a).unwrap();
    assert_eq!(fs.stat(ROOT_INO).unwrap().mode, 0o040700);
    assert!(resolve(&fs, b"/x").is_ok() && resolve(&fs, b"/y").is_ok());
    // ".." cannot climb out of the unpack root.
    let sub = mkdirs(&mut fs, b"/sub");
    unpack(&mut fs, sub, &archive(&[e(1, 0o100644, "../../esc", b"")])).unwrap();
    assert!(resolve(&fs, b"/sub/esc").is_ok());
    fs.fsck().unwrap();
}

#[test]
fn hard_links_with_data_first_or_last() {
    for data_last in [false, true] {
        let mut fs = fs();
        let (d1, d2): (&[u8], &[u8]) = if data_last {
            (b"", b"shared")
        } else {
            (b"shared", b"")
        };
        let a = archive(&[
            E {
                nlink: 2,
                ..e(9, 0o100644, "a", d1)
            },
            E {
                nlink: 2,
                ..e(9, 0o100644, "b", d2)
            },
            E {
                nlink: 1,
                ..e(9, 0o100644, "c", b"other")
            },
        ]);
        let stats = unpack(&mut fs, ROOT_INO, &a).unwrap();
        assert_eq!(stats.hard_links, 1);
        let ia = resolve(&fs, b"/a").unwrap();
        assert_eq!(resolve(&fs, b"/b"), Ok(ia));
        assert_eq!(fs.stat(ia).unwrap().nlink, 2);
        assert_eq!(read_all(&mut fs, ia), b"shared");
        assert_ne!(resolve(&fs, b"/c"), Ok(ia), "nlink 1 is not a link group");
        fs.fsck().unwrap();
    }
}

#[test]
fn crc_magic_and_concatenated_archives() {
    let mut fs = fs();
    let mut a = archive_with("070702", &[e(1, 0o100644, "one", b"1")]);
    a.extend_from_slice(&[0; 512]);
    a.extend_from_slice(&archive(&[e(1, 0o100644, "two", b"22")]));
    assert_eq!(unpack(&mut fs, ROOT_INO, &a).unwrap().files, 2);
    assert!(resolve(&fs, b"/one").is_ok() && resolve(&fs, b"/two").is_ok());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let mut fs = fs();
    let a = archive(&[
        e(1, 0o100644, "f", b"long original"),
        e(2, 0o100600, "f", b"new"),
        e(3, 0o100644, "g", b""),
        e(4, 0o040755, "g", b""),
        e(5, 0o120777, "g/..", b"x"),
    ]);
    assert_eq!(
        unpack(&mut fs, ROOT_INO, &a),
        Err(Errno::EINVAL),
        "`..` as a name is refused"
    );
    let f = resolve(&fs, b"/f").unwrap();
    assert_eq!(read_all(&mut fs, f), b"new");
    assert_eq!(fs.stat(f).unwrap().mode, 0o100600);
    assert_eq!(
        fs.file_type(resolve(&fs, b"/g").unwrap()),
        Ok(FileType::Directory)
    );
    fs.fsck().unwrap();
}

#[test]
fn malformed_input_is_einval() {
    let mut fs = fs();
    assert_eq!(unpack(&mut fs, ROOT_INO, b""), Ok(UnpackStats::default()));
    assert_eq!(
        unpack(&mut fs, ROOT_INO, b"070707 old binary"),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        unpack(&mut fs, ROOT_INO, &[0x1f, 0x8b, 8, 0]),
        Err(Errno::EINVAL),
        "gzip not supported"
    );
    let good = sample();
    // Every cut inside the first entry is an error, never a panic.
    for cut in 1..112 {
        assert_eq!(
            unpack(&mut fs, ROOT_INO, &good[..cut]),
            Err(Errno::EINVAL),
            "cut at {cut}"
        );
    }
    let mut bad_type = archive(&[e(1, 0o170644, "x", b"")]);
    assert_eq!(unpack(&mut fs, ROOT_INO, &bad_type), Err(Errno::EINVAL));
    bad_type[6] = b'z';
    assert_eq!(unpack(&mut fs, ROOT_INO, &bad_type), Err(Errno::EINVAL));
    let no_nul = {
        let mut a = archive(&[e(1, 0o100644, "abc", b"")]);
        a[110 + 3] = b'd';
        a
    };
    assert_eq!(unpack(&mut fs, ROOT_INO, &no_nul), Err(Errno::EINVAL));
    let empty_link = archive(&[e(1, 0o120777, "l", b"")]);
    assert_eq!(unpack(&mut fs, ROOT_INO, &empty_link), Err(Errno::EINVAL));
    fs.fsck().unwrap();
}

#[test]
fn file_system_errors_pass_through() {
    let mut fs = Tmpfs::new(
        TmpfsConfig {
            // One page: a file one byte longer does not fit.
            max_bytes: 4096,
            ..Default::default()
        },
        Timespec::default(),
    );
    assert_eq!(
        unpack(
            &mut fs,
            ROOT_INO,
            &archive(&[e(1, 0o100644, "f", &[7; 4097])])
        ),
        Err(Errno::ENOSPC)
    );
    let mut fs = self::fs();
    let a = archive(&[e(1, 0o100644, "f", b""), e(2, 0o100644, "f/x", b"")]);
    assert_eq!(unpack(&mut fs, ROOT_INO, &a), Err(Errno::ENOTDIR));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut fs = fs();
        let _ = unpack(&mut fs, ROOT_INO, &bytes);
        prop_assert_eq!(fs.fsck(), Ok(()));
    }

    #[test]
    fn mutated_archives_never_panic(
        cut in 0usize..400,
        flips in prop::collection::vec((0usize..400, any::<u8>()), 0..6),
        hexy in prop::collection::vec((0usize..400, prop::sample::select(b"0123456789abcdefF".to_vec())), 0..6),
    ) {
        let mut a = sample();
        for (i, b) in flips {
            let n = a.len();
            a[i % n] = b;
        }
        // Mutating header digits keeps the header parseable but makes sizes
        // and modes arbitrary, which is where bounds checks matter.
        for (i, b) in hexy {
            let n = a.len();
            a[i % n] = b;
        }
        a.truncate(cut.min(a.len()));
        let mut fs = fs();
        let _ = unpack(&mut fs, ROOT_INO, &a);
        prop_assert_eq!(fs.fsck(), Ok(()));
    }
}
