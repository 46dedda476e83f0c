//! Search permission during walks (`walk_as`, `lookup_parent_as`) and the
//! group of names created in a set-group-ID directory.

mod common;

use abi::Errno;
use common::*;
use vfs::access::Caller;
use vfs::{Walked, ROOT_INO};

const USER: Caller = Caller {
    uid: 1000,
    gid: 1000,
    groups: &[50],
};

#[test]
fn search_needs_x_on_every_directory() {
    let mut fs = fs();
    let a = mkdirs(&mut fs, b"/a/b");
    file(&mut fs, b"/a/b/f", b"x");
    let top = fs.lookup(ROOT_INO, b"/a", true).unwrap();
    assert!(matches!(
        fs.walk_as(Some(&USER), ROOT_INO, b"/a/b/f", true, &[]),
        Ok(Walked::Ino(_))
    ));
    fs.chmod(top, 0o700).unwrap();
    assert_eq!(
        fs.walk_as(Some(&USER), ROOT_INO, b"/a/b/f", true, &[]),
        Err(Errno::EACCES)
    );
    assert_eq!(
        fs.lookup_parent_as(Some(&USER), ROOT_INO, b"/a/b/new"),
        Err(Errno::EACCES)
    );
    // The kernel itself (no caller) and root are not refused.
    assert!(fs.walk(ROOT_INO, b"/a/b/f", true, &[]).is_ok());
    let root = Caller {
        uid: 0,
        gid: 0,
        groups: &[],
    };
    assert!(fs
        .walk_as(Some(&root), ROOT_INO, b"/a/b/f", true, &[])
        .is_ok());
    // Group members are let through by the group bits.
    fs.chmod(top, 0o710).unwrap();
    fs.chown(top, Some(0), Some(50)).unwrap();
    assert!(fs
        .walk_as(Some(&USER), ROOT_INO, b"/a/b/f", true, &[])
        .is_ok());
    // Relative walks check the start directory too.
    fs.chmod(a, 0o700).unwrap();
    assert_eq!(
        fs.walk_as(Some(&USER), a, b"f", true, &[]),
        Err(Errno::EACCES)
    );
}

#[test]
fn setgid_directory_gives_its_group() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/shared");
    fs.chown(d, None, Some(77)).unwrap();
    fs.chmod(d, 0o2775).unwrap();
    fs.set_owner(1000, 1000);
    let f = fs.create(d, b"f", 0o644).unwrap();
    let sub = fs.mkdir(d, b"sub", 0o755).unwrap();
    let (fst, sst) = (fs.stat(f).unwrap(), fs.stat(sub).unwrap());
    assert_eq!((fst.uid, fst.gid, fst.mode & 0o7777), (1000, 77, 0o644));
    assert_eq!((sst.gid, sst.mode & 0o7777), (77, 0o2755));
    let plain = fs.create(ROOT_INO, b"g", 0o644).unwrap();
    assert_eq!(fs.stat(plain).unwrap().gid, 1000);
}
