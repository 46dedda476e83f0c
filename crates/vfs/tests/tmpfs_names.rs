//! Creating and removing names: mkdir(2), mknod(2), link(2), unlink(2),
//! rmdir(2), symlink(2), open(2) with O_CREAT.

mod common;

use abi::Errno;
use common::*;
use vfs::devnum::makedev;
use vfs::{FileType, ROOT_INO};

#[test]
fn create_and_exists() {
    let mut fs = fs();
    let f = fs.create(ROOT_INO, b"f", 0o4755 | 0o170000).unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!(st.mode, 0o104755, "type forced to regular, setuid kept");
    assert_eq!(st.nlink, 1);
    assert_eq!(fs.create(ROOT_INO, b"f", 0o644), Err(Errno::EEXIST));
    assert_eq!(fs.mkdir(ROOT_INO, b"f", 0o755), Err(Errno::EEXIST));
    assert_eq!(fs.create(ROOT_INO, b".", 0o644), Err(Errno::EEXIST));
    assert_eq!(fs.mkdir(ROOT_INO, b"..", 0o755), Err(Errno::EEXIST));
    assert_eq!(fs.create(ROOT_INO, b"", 0o644), Err(Errno::ENOENT));
    assert_eq!(
        fs.create(ROOT_INO, &[b'x'; 256], 0o644),
        Err(Errno::ENAMETOOLONG)
    );
    assert_eq!(fs.create(f, b"x", 0o644), Err(Errno::ENOTDIR));
    fs.fsck().unwrap();
}

#[test]
fn mkdir_link_counts() {
    let mut fs = fs();
    assert_eq!(fs.stat(ROOT_INO).unwrap().nlink, 2);
    let a = fs.mkdir(ROOT_INO, b"a", 0o755).unwrap();
    fs.mkdir(a, b"b", 0o700).unwrap();
    fs.mkdir(a, b"c", 0o700).unwrap();
    fs.create(a, b"f", 0o600).unwrap();
    assert_eq!(fs.stat(ROOT_INO).unwrap().nlink, 3);
    assert_eq!(fs.stat(a).unwrap().nlink, 4);
    assert_eq!(fs.stat(a).unwrap().mode, 0o040755);
    fs.rmdir(a, b"b").unwrap();
    assert_eq!(fs.stat(a).unwrap().nlink, 3);
    fs.fsck().unwrap();
}

#[test]
fn mknod_types() {
    let mut fs = fs();
    let null = fs
        .mknod(ROOT_INO, b"null", 0o020666, makedev(1, 3))
        .unwrap();
    let st = fs.stat(null).unwrap();
    assert_eq!((st.mode, st.rdev, st.size), (0o020666, 0x103, 0));
    assert_eq!(fs.file_type(null), Ok(FileType::CharDevice));
    let fifo = fs.mknod(ROOT_INO, b"fifo", 0o010600, 1234).unwrap();
    assert_eq!(fs.stat(fifo).unwrap().rdev, 0, "only devices keep rdev");
    let reg = fs.mknod(ROOT_INO, b"reg", 0o644, 0).unwrap();
    assert_eq!(fs.file_type(reg), Ok(FileType::Regular));
    assert!(fs.mknod(ROOT_INO, b"blk", 0o060600, makedev(8, 0)).is_ok());
    assert!(fs.mknod(ROOT_INO, b"sock", 0o140600, 0).is_ok());
    assert_eq!(fs.mknod(ROOT_INO, b"d", 0o040755, 0), Err(Errno::EPERM));
    assert_eq!(fs.mknod(ROOT_INO, b"l", 0o120777, 0), Err(Errno::EINVAL));
    assert_eq!(fs.mknod(ROOT_INO, b"bad", 0o170777, 0), Err(Errno::EINVAL));
    let mut buf = [0; 4];
    assert_eq!(
        fs.read(null, 0, &mut buf),
        Err(Errno::EINVAL),
        "devices have no data here"
    );
    fs.fsck().unwrap();
}

#[test]
fn symlink_rules() {
    let mut fs = fs();
    let l = fs.symlink(ROOT_INO, b"l", b"target").unwrap();
    let st = fs.stat(l).unwrap();
    assert_eq!((st.mode, st.size), (0o120777, 6));
    assert_eq!(fs.symlink(ROOT_INO, b"e", b""), Err(Errno::ENOENT));
    assert_eq!(fs.symlink(ROOT_INO, b"l", b"x"), Err(Errno::EEXIST));
    assert_eq!(
        fs.symlink(ROOT_INO, b"big", &[b'a'; 4096]),
        Err(Errno::ENAMETOOLONG)
    );
    assert_eq!(
        fs.usage().bytes_used,
        0,
        "a short target lives in the inode"
    );
    let long = [b'x'; 4000];
    let big = fs.symlink(ROOT_INO, b"long", &long).unwrap();
    assert_eq!(fs.usage().bytes_used, 4096, "a long one takes a page");
    assert_eq!(fs.readlink(big), Ok(long.to_vec()));
    let st = fs.stat(big).unwrap();
    assert_eq!((st.size, st.blocks), (4000, 8));
    fs.unlink(ROOT_INO, b"l").unwrap();
    fs.unlink(ROOT_INO, b"long").unwrap();
    assert_eq!(fs.usage().bytes_used, 0);
    fs.fsck().unwrap();
}

#[test]
fn hard_links() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/d");
    let f = file(&mut fs, b"/f", b"data");
    fs.link(d, b"g", f).unwrap();
    assert_eq!(fs.stat(f).unwrap().nlink, 2);
    assert_eq!(resolve(&fs, b"/d/g"), Ok(f));
    assert_eq!(
        fs.link(ROOT_INO, b"dd", d),
        Err(Errno::EPERM),
        "no directory hard links"
    );
    assert_eq!(fs.link(ROOT_INO, b"f", f), Err(Errno::EEXIST));
    fs.unlink(ROOT_INO, b"f").unwrap();
    assert_eq!(read_all(&mut fs, f), b"data");
    assert_eq!(fs.stat(f).unwrap().nlink, 1);
    fs.unlink(d, b"g").unwrap();
    assert!(!fs.exists(f));
    assert_eq!(fs.usage().bytes_used, 0);
    fs.fsck().unwrap();
}

#[test]
fn unlink_and_rmdir_errors() {
    let mut fs = fs();
    let a = mkdirs(&mut fs, b"/a/b");
    file(&mut fs, b"/f", b"");
    let a_ino = resolve(&fs, b"/a").unwrap();
    assert_eq!(fs.unlink(ROOT_INO, b"a"), Err(Errno::EISDIR));
    assert_eq!(fs.unlink(ROOT_INO, b"."), Err(Errno::EISDIR));
    assert_eq!(fs.unlink(ROOT_INO, b"nope"), Err(Errno::ENOENT));
    assert_eq!(fs.rmdir(ROOT_INO, b"f"), Err(Errno::ENOTDIR));
    assert_eq!(fs.rmdir(ROOT_INO, b"a"), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.rmdir(a, b"."), Err(Errno::EINVAL));
    assert_eq!(fs.rmdir(a, b".."), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.rmdir(ROOT_INO, b"nope"), Err(Errno::ENOENT));
    fs.rmdir(a_ino, b"b").unwrap();
    fs.rmdir(ROOT_INO, b"a").unwrap();
    assert!(!fs.exists(a) && !fs.exists(a_ino));
    fs.fsck().unwrap();
}

#[test]
fn removed_directory_held_open() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/d");
    fs.retain(d).unwrap();
    fs.rmdir(ROOT_INO, b"d").unwrap();
    assert!(fs.exists(d));
    assert_eq!(fs.stat(d).unwrap().nlink, 0);
    assert_eq!(fs.create(d, b"x", 0o644), Err(Errno::ENOENT));
    assert_eq!(fs.mkdir(d, b"x", 0o755), Err(Errno::ENOENT));
    assert_eq!(fs.lookup(d, b".", true), Ok(d));
    assert_eq!(fs.lookup(d, b"..", true), Ok(ROOT_INO));
    assert_eq!(fs.readdir(d, 0).map(|e| e.is_some()), Err(Errno::ENOENT));
    fs.fsck().unwrap();
    fs.release(d).unwrap();
    assert!(!fs.exists(d));
    assert_eq!(fs.release(d), Err(Errno::ENOENT));
    fs.fsck().unwrap();
}

#[test]
fn unlinked_open_file_lives_until_last_release() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", b"hello");
    fs.retain(f).unwrap();
    fs.retain(f).unwrap();
    fs.unlink(ROOT_INO, b"f").unwrap();
    assert_eq!(resolve(&fs, b"/f"), Err(Errno::ENOENT));
    assert_eq!(read_all(&mut fs, f), b"hello");
    fs.write(f, 5, b" world").unwrap();
    assert_eq!(fs.usage().bytes_used, 4096);
    assert_eq!(fs.link(ROOT_INO, b"back", f), Err(Errno::ENOENT));
    fs.release(f).unwrap();
    assert!(fs.exists(f));
    fs.release(f).unwrap();
    assert!(!fs.exists(f));
    assert_eq!(fs.usage().bytes_used, 0);
    assert_eq!(fs.usage().inodes_used, 1);
    fs.fsck().unwrap();
}

#[test]
fn release_of_a_linked_file_keeps_it() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", b"x");
    fs.retain(f).unwrap();
    fs.release(f).unwrap();
    assert!(fs.exists(f));
    assert_eq!(fs.release(f), Err(Errno::EINVAL), "unbalanced release");
}

#[test]
fn inode_limit() {
    let mut fs = vfs::Tmpfs::new(
        vfs::TmpfsConfig {
            max_inodes: 3,
            ..Default::default()
        },
        vfs::Timespec::default(),
    );
    fs.create(ROOT_INO, b"a", 0o644).unwrap();
    fs.mkdir(ROOT_INO, b"b", 0o755).unwrap();
    assert_eq!(fs.create(ROOT_INO, b"c", 0o644), Err(Errno::ENOSPC));
    fs.unlink(ROOT_INO, b"a").unwrap();
    let c = fs.create(ROOT_INO, b"c", 0o644).unwrap();
    fs.fsck().unwrap();
    // As on Linux, a hard link takes an inode slot: it costs memory too.
    fs.unlink(ROOT_INO, b"c").unwrap();
    let d = fs.create(ROOT_INO, b"d", 0o644).unwrap();
    assert_eq!(fs.link(ROOT_INO, b"e", d), Err(Errno::ENOSPC));
    fs.rmdir(ROOT_INO, b"b").unwrap();
    fs.link(ROOT_INO, b"e", d).unwrap();
    assert_eq!(fs.usage().inodes_used, 3);
    assert_eq!(fs.symlink(ROOT_INO, b"s", b"t"), Err(Errno::ENOSPC));
    fs.fsck().unwrap();
    let _ = c;
}

#[test]
fn renaming_over_an_extra_link_frees_its_slot() {
    let mut fs = fs();
    let a = fs.create(ROOT_INO, b"a", 0o644).unwrap();
    fs.link(ROOT_INO, b"b", a).unwrap();
    fs.create(ROOT_INO, b"c", 0o644).unwrap();
    assert_eq!(fs.usage().inodes_used, 4);
    fs.rename(ROOT_INO, b"c", ROOT_INO, b"b").unwrap();
    assert_eq!(fs.usage().inodes_used, 3);
    fs.fsck().unwrap();
}
