//! open(2) flag rules and renameat2(2) flags.

mod common;

use abi::linux_raw_sys::general as lx;
use abi::Errno;
use common::*;
use vfs::{Opened, ROOT_INO};

const RD: u32 = lx::O_RDONLY;
const WR: u32 = lx::O_WRONLY;
const CREAT: u32 = lx::O_CREAT;
const EXCL: u32 = lx::O_EXCL;

#[test]
fn create_excl_trunc() {
    let mut fs = fs();
    let o = fs.open(ROOT_INO, b"/f", WR | CREAT, 0o640).unwrap();
    assert!(o.created);
    assert_eq!(fs.stat(o.ino).unwrap().mode, 0o100640);
    fs.write(o.ino, 0, b"data").unwrap();
    assert_eq!(
        fs.open(ROOT_INO, b"/f", WR | CREAT, 0o600),
        Ok(Opened {
            ino: o.ino,
            created: false
        })
    );
    assert_eq!(
        fs.open(ROOT_INO, b"/f", WR | CREAT | EXCL, 0o600),
        Err(Errno::EEXIST)
    );
    assert_eq!(fs.stat(o.ino).unwrap().size, 4);
    fs.open(ROOT_INO, b"f", WR | lx::O_TRUNC, 0).unwrap();
    assert_eq!(fs.stat(o.ino).unwrap().size, 0);
    assert_eq!(fs.open(ROOT_INO, b"/missing", RD, 0), Err(Errno::ENOENT));
    assert_eq!(
        fs.open(ROOT_INO, b"/new/", WR | CREAT, 0o644),
        Err(Errno::EISDIR)
    );
    assert_eq!(
        fs.open(ROOT_INO, b"/nodir/x", WR | CREAT, 0o644),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        fs.open(ROOT_INO, b"/t", lx::O_TMPFILE | WR, 0o600),
        Err(Errno::EOPNOTSUPP)
    );
}

#[test]
fn directories() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/d");
    let f = file(&mut fs, b"/f", b"");
    assert_eq!(
        fs.open(ROOT_INO, b"/d", RD | lx::O_DIRECTORY, 0)
            .unwrap()
            .ino,
        d
    );
    assert_eq!(fs.open(ROOT_INO, b"/d", WR, 0), Err(Errno::EISDIR));
    assert_eq!(
        fs.open(ROOT_INO, b"/d", RD | lx::O_TRUNC, 0),
        Err(Errno::EISDIR)
    );
    assert_eq!(fs.open(ROOT_INO, b"/d", RD | CREAT, 0), Err(Errno::EISDIR));
    assert_eq!(fs.open(ROOT_INO, b"/d/", RD | CREAT, 0), Err(Errno::EISDIR));
    assert_eq!(
        fs.open(ROOT_INO, b"/f", RD | lx::O_DIRECTORY, 0),
        Err(Errno::ENOTDIR)
    );
    assert_eq!(fs.open(ROOT_INO, b"/f/", RD, 0), Err(Errno::ENOTDIR));
    assert_eq!(fs.open(ROOT_INO, b"/f", RD, 0).unwrap().ino, f);
}

#[test]
fn symlinks() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", b"x");
    let l = fs.symlink(ROOT_INO, b"l", b"f").unwrap();
    fs.symlink(ROOT_INO, b"dangling", b"made").unwrap();
    fs.symlink(ROOT_INO, b"dangling_dir", b"made_dir/").unwrap();
    assert_eq!(fs.open(ROOT_INO, b"/l", RD, 0).unwrap().ino, f);
    assert_eq!(
        fs.open(ROOT_INO, b"/l", RD | lx::O_NOFOLLOW, 0),
        Err(Errno::ELOOP)
    );
    assert_eq!(
        fs.open(ROOT_INO, b"/l", lx::O_PATH | lx::O_NOFOLLOW, 0)
            .unwrap()
            .ino,
        l
    );
    assert_eq!(
        fs.open(ROOT_INO, b"/l", WR | CREAT | EXCL, 0o644),
        Err(Errno::EEXIST)
    );
    assert_eq!(fs.open(ROOT_INO, b"/l", WR | CREAT, 0o644).unwrap().ino, f);
    let made = fs.open(ROOT_INO, b"/dangling", WR | CREAT, 0o644).unwrap();
    assert!(made.created);
    assert_eq!(resolve(&fs, b"/made"), Ok(made.ino));
    assert_eq!(
        fs.open(ROOT_INO, b"/dangling_dir", WR | CREAT, 0o644),
        Err(Errno::EISDIR)
    );
    fs.symlink(ROOT_INO, b"loop", b"loop").unwrap();
    assert_eq!(
        fs.open(ROOT_INO, b"/loop", WR | CREAT, 0o644),
        Err(Errno::ELOOP)
    );
    fs.fsck().unwrap();
}

#[test]
fn rename_noreplace() {
    let mut fs = fs();
    file(&mut fs, b"/a", b"");
    file(&mut fs, b"/b", b"");
    let nr = lx::RENAME_NOREPLACE;
    assert_eq!(
        fs.rename2(ROOT_INO, b"a", ROOT_INO, b"b", nr),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        fs.rename2(ROOT_INO, b"x", ROOT_INO, b"c", nr),
        Err(Errno::ENOENT)
    );
    fs.rename2(ROOT_INO, b"a", ROOT_INO, b"c", nr).unwrap();
    assert_eq!(
        fs.rename2(ROOT_INO, b"c", ROOT_INO, b"d", nr | lx::RENAME_EXCHANGE),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        fs.rename2(ROOT_INO, b"c", ROOT_INO, b"d", lx::RENAME_WHITEOUT),
        Err(Errno::EINVAL)
    );
    fs.fsck().unwrap();
}

#[test]
fn rename_exchange() {
    let mut fs = fs();
    let x = mkdirs(&mut fs, b"/x/inner");
    let xd = resolve(&fs, b"/x").unwrap();
    let y = mkdirs(&mut fs, b"/y");
    let f = file(&mut fs, b"/y/f", b"");
    let ex = lx::RENAME_EXCHANGE;
    // A directory and a file in different parents trade places.
    fs.rename2(xd, b"inner", y, b"f", ex).unwrap();
    assert_eq!(resolve(&fs, b"/x/inner"), Ok(f));
    assert_eq!(resolve(&fs, b"/y/f"), Ok(x));
    assert_eq!(fs.path_of(x).unwrap(), b"/y/f");
    assert_eq!(fs.stat(xd).unwrap().nlink, 2);
    assert_eq!(fs.stat(y).unwrap().nlink, 3);
    fs.fsck().unwrap();
    assert_eq!(
        fs.rename2(ROOT_INO, b"y", y, b"f", ex),
        Err(Errno::EINVAL),
        "into its own subtree"
    );
    assert_eq!(
        fs.rename2(ROOT_INO, b"y", ROOT_INO, b"nope", ex),
        Err(Errno::ENOENT)
    );
    fs.rename2(ROOT_INO, b"x", ROOT_INO, b"y", ex).unwrap();
    assert_eq!(resolve(&fs, b"/x"), Ok(y));
    fs.fsck().unwrap();
}
