//! rename(2) and its Linux error rules.

mod common;

use abi::Errno;
use common::*;
use vfs::ROOT_INO;

#[test]
fn moves_and_replaces_files() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/d");
    let f = file(&mut fs, b"/f", b"new");
    let g = file(&mut fs, b"/d/g", b"old");
    fs.rename(ROOT_INO, b"f", d, b"g").unwrap();
    assert_eq!(resolve(&fs, b"/d/g"), Ok(f));
    assert_eq!(resolve(&fs, b"/f"), Err(Errno::ENOENT));
    assert!(!fs.exists(g), "replaced file freed");
    assert_eq!(fs.usage().bytes_used, 4096);
    fs.fsck().unwrap();
}

#[test]
fn moves_directories_and_fixes_link_counts() {
    let mut fs = fs();
    let a = mkdirs(&mut fs, b"/a");
    let b = mkdirs(&mut fs, b"/b");
    let sub = mkdirs(&mut fs, b"/a/sub/deeper");
    let sub_dir = resolve(&fs, b"/a/sub").unwrap();
    fs.rename(a, b"sub", b, b"moved").unwrap();
    assert_eq!(fs.stat(a).unwrap().nlink, 2);
    assert_eq!(fs.stat(b).unwrap().nlink, 3);
    assert_eq!(fs.lookup(sub_dir, b"..", true), Ok(b));
    assert_eq!(fs.path_of(sub).unwrap(), b"/b/moved/deeper");
    fs.fsck().unwrap();
}

#[test]
fn replaces_an_empty_directory_only() {
    let mut fs = fs();
    let x = mkdirs(&mut fs, b"/x");
    let empty = mkdirs(&mut fs, b"/y/empty");
    let y = resolve(&fs, b"/y").unwrap();
    mkdirs(&mut fs, b"/full/child");
    assert_eq!(
        fs.rename(ROOT_INO, b"x", ROOT_INO, b"full"),
        Err(Errno::ENOTEMPTY)
    );
    fs.rename(ROOT_INO, b"x", y, b"empty").unwrap();
    assert!(!fs.exists(empty));
    assert_eq!(resolve(&fs, b"/y/empty"), Ok(x));
    assert_eq!(fs.stat(y).unwrap().nlink, 3);
    assert_eq!(fs.stat(ROOT_INO).unwrap().nlink, 4);
    fs.fsck().unwrap();
}

#[test]
fn type_mismatches() {
    let mut fs = fs();
    mkdirs(&mut fs, b"/d");
    file(&mut fs, b"/f", b"");
    assert_eq!(
        fs.rename(ROOT_INO, b"f", ROOT_INO, b"d"),
        Err(Errno::EISDIR)
    );
    assert_eq!(
        fs.rename(ROOT_INO, b"d", ROOT_INO, b"f"),
        Err(Errno::ENOTDIR)
    );
    assert_eq!(
        fs.rename(ROOT_INO, b"none", ROOT_INO, b"x"),
        Err(Errno::ENOENT)
    );
    assert_eq!(fs.rename(ROOT_INO, b".", ROOT_INO, b"x"), Err(Errno::EBUSY));
    assert_eq!(
        fs.rename(ROOT_INO, b"f", ROOT_INO, b".."),
        Err(Errno::EBUSY)
    );
    let f = resolve(&fs, b"/f").unwrap();
    assert_eq!(fs.rename(ROOT_INO, b"d", f, b"x"), Err(Errno::ENOTDIR));
    fs.fsck().unwrap();
}

#[test]
fn no_directory_into_its_own_subtree() {
    let mut fs = fs();
    let c = mkdirs(&mut fs, b"/a/b/c");
    let a = resolve(&fs, b"/a").unwrap();
    let b = resolve(&fs, b"/a/b").unwrap();
    assert_eq!(fs.rename(ROOT_INO, b"a", c, b"x"), Err(Errno::EINVAL));
    assert_eq!(fs.rename(ROOT_INO, b"a", a, b"x"), Err(Errno::EINVAL));
    // Replacing an ancestor of the source is ENOTEMPTY, as Linux says.
    assert_eq!(fs.rename(b, b"c", ROOT_INO, b"a"), Err(Errno::ENOTEMPTY));
    fs.fsck().unwrap();
}

#[test]
fn same_inode_is_a_no_op() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", b"");
    fs.link(ROOT_INO, b"g", f).unwrap();
    fs.rename(ROOT_INO, b"f", ROOT_INO, b"g").unwrap();
    assert_eq!(resolve(&fs, b"/f"), Ok(f), "both names remain (POSIX)");
    assert_eq!(fs.stat(f).unwrap().nlink, 2);
    fs.rename(ROOT_INO, b"f", ROOT_INO, b"f").unwrap();
    fs.fsck().unwrap();
}

#[test]
fn rename_within_a_directory_keeps_other_entries() {
    let mut fs = fs();
    for n in [&b"a"[..], b"b", b"c"] {
        file(&mut fs, &[b"/", n].concat(), b"");
    }
    fs.rename(ROOT_INO, b"b", ROOT_INO, b"z").unwrap();
    let names = list(&fs, ROOT_INO);
    assert_eq!(
        names,
        vec![
            b".".to_vec(),
            b"..".to_vec(),
            b"a".to_vec(),
            b"c".to_vec(),
            b"z".to_vec()
        ]
    );
}

#[test]
fn replaced_open_file_survives() {
    let mut fs = fs();
    let old = file(&mut fs, b"/old", b"keep me");
    file(&mut fs, b"/new", b"x");
    fs.retain(old).unwrap();
    fs.rename(ROOT_INO, b"new", ROOT_INO, b"old").unwrap();
    assert_eq!(read_all(&mut fs, old), b"keep me");
    fs.fsck().unwrap();
    fs.release(old).unwrap();
    assert!(!fs.exists(old));
    fs.fsck().unwrap();
}
