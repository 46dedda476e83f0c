//! stat, chmod, chown, utimes, readdir and the getdents64 helper.

mod common;

use abi::Errno;
use common::*;
use vfs::layout::{dirent64_reclen, fill_getdents64};
use vfs::{FileType, Timespec, ROOT_INO};

#[test]
fn stat_fields() {
    let mut fs = fs();
    fs.set_owner(1000, 100);
    fs.set_time(Timespec { sec: 77, nsec: 5 });
    let f = file(&mut fs, b"/f", &[7; 5000]);
    let st = fs.stat(f).unwrap();
    assert_eq!(
        (st.ino, st.uid, st.gid, st.size, st.blocks, st.blksize),
        (f, 1000, 100, 5000, 16, 4096)
    );
    assert_eq!(st.mtime, Timespec { sec: 77, nsec: 5 });
    let d = mkdirs(&mut fs, b"/d");
    file(&mut fs, b"/d/x", b"");
    assert_eq!(
        fs.stat(d).unwrap().size,
        60,
        "20 bytes per entry with . and .."
    );
    assert_eq!(fs.stat(999), Err(Errno::ENOENT));
}

#[test]
fn chmod_chown_utimes() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", b"");
    fs.chmod(f, 0o106755).unwrap();
    assert_eq!(
        fs.stat(f).unwrap().mode,
        0o106755,
        "type kept, suid/sgid set"
    );
    fs.set_time(Timespec::from_secs(9));
    fs.chown(f, Some(5), None).unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!(
        (st.uid, st.gid, st.mode),
        (5, 0, 0o100755),
        "suid and group-exec sgid cleared"
    );
    assert_eq!(st.ctime.sec, 9);
    fs.chmod(f, 0o2644).unwrap();
    fs.chown(f, None, Some(3)).unwrap();
    assert_eq!(
        fs.stat(f).unwrap().mode,
        0o102644,
        "sgid without group-exec is mandatory locking: kept"
    );
    let d = mkdirs(&mut fs, b"/d");
    fs.chmod(d, 0o2755).unwrap();
    fs.chown(d, Some(1), Some(1)).unwrap();
    assert_eq!(fs.stat(d).unwrap().mode, 0o042755, "directories keep sgid");
    fs.utimes(f, Some(Timespec::from_secs(1)), None).unwrap();
    fs.utimes(f, None, Some(Timespec::from_secs(2))).unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!((st.atime.sec, st.mtime.sec), (1, 2));
}

#[test]
fn readdir_lists_dots_then_entries_with_types() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/d");
    file(&mut fs, b"/d/f", b"");
    fs.mkdir(d, b"sub", 0o755).unwrap();
    fs.symlink(d, b"l", b"f").unwrap();
    let mut got = Vec::new();
    let mut cookie = 0;
    while let Some((e, next)) = fs.readdir(d, cookie).unwrap() {
        got.push((e.name.to_vec(), e.kind, e.ino));
        cookie = next;
    }
    let sub = resolve(&fs, b"/d/sub").unwrap();
    assert_eq!(
        got,
        vec![
            (b".".to_vec(), FileType::Directory, d),
            (b"..".to_vec(), FileType::Directory, ROOT_INO),
            (
                b"f".to_vec(),
                FileType::Regular,
                resolve(&fs, b"/d/f").unwrap()
            ),
            (b"sub".to_vec(), FileType::Directory, sub),
            (
                b"l".to_vec(),
                FileType::Symlink,
                fs.lookup(ROOT_INO, b"/d/l", false).unwrap()
            ),
        ]
    );
    let f = resolve(&fs, b"/d/f").unwrap();
    assert_eq!(fs.readdir(f, 0).map(|e| e.is_some()), Err(Errno::ENOTDIR));
    assert_eq!(
        list(&fs, ROOT_INO),
        vec![b".".to_vec(), b"..".to_vec(), b"d".to_vec()]
    );
}

#[test]
fn cookies_survive_changes_between_calls() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/d");
    for i in 0..10 {
        file(&mut fs, format!("/d/{i}").as_bytes(), b"");
    }
    // Read ".", "..", "0", "1", "2", then delete what was seen and what is
    // ahead, add new names, and resume.
    let mut cookie = 0;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (e, next) = fs.readdir(d, cookie).unwrap().unwrap();
        seen.push(e.name.to_vec());
        cookie = next;
    }
    fs.unlink(d, b"1").unwrap();
    fs.unlink(d, b"5").unwrap();
    file(&mut fs, b"/d/new", b"");
    while let Some((e, next)) = fs.readdir(d, cookie).unwrap() {
        seen.push(e.name.to_vec());
        cookie = next;
    }
    let expect: Vec<Vec<u8>> = [
        ".", "..", "0", "1", "2", "3", "4", "6", "7", "8", "9", "new",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    assert_eq!(seen, expect);
}

#[test]
fn getdents64_fills_resumes_and_rejects_tiny_buffers() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/d");
    let names: Vec<String> = (0..50).map(|i| format!("file-number-{i}")).collect();
    for n in &names {
        file(&mut fs, format!("/d/{n}").as_bytes(), b"");
    }
    let mut cookie = 0;
    let mut got = Vec::new();
    loop {
        let mut buf = [0u8; 200];
        let (n, next) = fill_getdents64(&fs, d, cookie, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        let mut off = 0;
        while off < n {
            let reclen = u16::from_le_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&c| c == 0).unwrap()];
            assert_eq!(reclen, dirent64_reclen(name.len()));
            got.push(String::from_utf8(name.to_vec()).unwrap());
            off += reclen;
        }
        assert!(next > cookie);
        cookie = next;
    }
    assert_eq!(got.len(), 52);
    assert_eq!(&got[2..], &names[..]);
    let mut tiny = [0u8; 10];
    assert_eq!(fill_getdents64(&fs, d, 0, &mut tiny), Err(Errno::EINVAL));
}
