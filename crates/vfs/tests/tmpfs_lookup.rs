//! Path resolution as path_resolution(7) describes it.

mod common;

use abi::Errno;
use common::*;
use vfs::ROOT_INO;

#[test]
fn absolute_relative_dots_and_slashes() {
    let mut fs = fs();
    let b = mkdirs(&mut fs, b"/a/b");
    let a = resolve(&fs, b"/a").unwrap();
    let f = file(&mut fs, b"/a/b/f", b"x");
    assert_eq!(resolve(&fs, b"/"), Ok(ROOT_INO));
    assert_eq!(resolve(&fs, b"///"), Ok(ROOT_INO));
    assert_eq!(resolve(&fs, b"/a/b/f"), Ok(f));
    assert_eq!(resolve(&fs, b"//a///b//f"), Ok(f));
    assert_eq!(fs.lookup(a, b"b/f", true), Ok(f));
    assert_eq!(fs.lookup(b, b"../b/./f", true), Ok(f));
    assert_eq!(fs.lookup(b, b"..", true), Ok(a));
    assert_eq!(fs.lookup(b, b".", true), Ok(b));
    assert_eq!(
        resolve(&fs, b"/../../a"),
        Ok(a),
        ".. of the root is the root"
    );
    assert_eq!(fs.lookup(b, b"/a", true), Ok(a), "absolute ignores cwd");
}

#[test]
fn errors() {
    let mut fs = fs();
    mkdirs(&mut fs, b"/a");
    let f = file(&mut fs, b"/a/f", b"");
    assert_eq!(resolve(&fs, b""), Err(Errno::ENOENT));
    assert_eq!(resolve(&fs, b"/nope"), Err(Errno::ENOENT));
    assert_eq!(resolve(&fs, b"/nope/x"), Err(Errno::ENOENT));
    assert_eq!(resolve(&fs, b"/a/f/x"), Err(Errno::ENOTDIR));
    assert_eq!(resolve(&fs, b"/a/f/"), Err(Errno::ENOTDIR));
    assert_eq!(resolve(&fs, b"/a/f/."), Err(Errno::ENOTDIR));
    assert_eq!(resolve(&fs, b"/a/"), resolve(&fs, b"/a"));
    assert_eq!(
        fs.lookup(f, b"x", true),
        Err(Errno::ENOTDIR),
        "cwd must be a directory"
    );
    let long = [b'n'; 256];
    assert_eq!(resolve(&fs, &long), Err(Errno::ENAMETOOLONG));
    let mut p = b"/".to_vec();
    p.extend_from_slice(&[b'n'; 255]);
    assert_eq!(resolve(&fs, &p), Err(Errno::ENOENT));
    let huge: Vec<u8> = b"/a".iter().copied().cycle().take(4096).collect();
    assert_eq!(resolve(&fs, &huge), Err(Errno::ENAMETOOLONG));
    let just_fits: Vec<u8> = b"/.".iter().copied().cycle().take(4095).collect();
    assert_eq!(resolve(&fs, &just_fits), Ok(ROOT_INO));
}

#[test]
fn symlinks() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/d");
    let f = file(&mut fs, b"/d/f", b"hi");
    let bin = mkdirs(&mut fs, b"/usr/bin");
    fs.symlink(ROOT_INO, b"abs", b"/d").unwrap();
    let rel = fs.symlink(bin, b"rel", b"../../d/f").unwrap();
    fs.symlink(ROOT_INO, b"tofile", b"d/f").unwrap();
    fs.symlink(ROOT_INO, b"dangling", b"/nowhere").unwrap();
    assert_eq!(
        resolve(&fs, b"/abs/f"),
        Ok(f),
        "middle symlinks are followed"
    );
    assert_eq!(resolve(&fs, b"/abs"), Ok(d));
    assert_ne!(
        fs.lookup(ROOT_INO, b"/abs", false),
        Ok(d),
        "last not followed if asked"
    );
    assert_eq!(
        fs.lookup(ROOT_INO, b"/abs/", false),
        Ok(d),
        "trailing slash follows"
    );
    assert_eq!(
        resolve(&fs, b"/usr/bin/rel"),
        Ok(f),
        "relative to the link's directory"
    );
    assert_eq!(fs.lookup(ROOT_INO, b"/usr/bin/rel", false), Ok(rel));
    assert_eq!(resolve(&fs, b"/tofile/"), Err(Errno::ENOTDIR));
    assert_eq!(resolve(&fs, b"/dangling"), Err(Errno::ENOENT));
    assert!(fs.lookup(ROOT_INO, b"/dangling", false).is_ok());
    assert_eq!(fs.readlink(rel), Ok(b"../../d/f".to_vec()));
    assert_eq!(fs.readlink(f), Err(Errno::EINVAL));
}

#[test]
fn symlink_loops_and_the_limit_of_forty() {
    let mut fs = fs();
    fs.symlink(ROOT_INO, b"loop", b"loop").unwrap();
    assert_eq!(resolve(&fs, b"/loop"), Err(Errno::ELOOP));
    assert_eq!(resolve(&fs, b"/loop/x"), Err(Errno::ELOOP));
    assert!(fs.lookup(ROOT_INO, b"/loop", false).is_ok());
    // A chain l0 -> l1 -> ... -> l40 -> target: 40 links resolve, 41 do not.
    let t = file(&mut fs, b"/target", b"");
    for i in 0..41 {
        let target = if i == 40 {
            b"target".to_vec()
        } else {
            format!("l{}", i + 1).into_bytes()
        };
        fs.symlink(ROOT_INO, format!("l{i}").as_bytes(), &target)
            .unwrap();
    }
    assert_eq!(resolve(&fs, b"/l1"), Ok(t));
    assert_eq!(resolve(&fs, b"/l0"), Err(Errno::ELOOP));
}

#[test]
fn lookup_parent_splits_the_last_component() {
    let mut fs = fs();
    let a = mkdirs(&mut fs, b"/a");
    fs.symlink(ROOT_INO, b"s", b"a").unwrap();
    assert_eq!(
        fs.lookup_parent(ROOT_INO, b"/a/new"),
        Ok((a, b"new".to_vec()))
    );
    assert_eq!(
        fs.lookup_parent(ROOT_INO, b"/s/new//"),
        Ok((a, b"new".to_vec()))
    );
    assert_eq!(fs.lookup_parent(a, b"new"), Ok((a, b"new".to_vec())));
    assert_eq!(fs.lookup_parent(a, b"/"), Ok((ROOT_INO, b".".to_vec())));
    assert_eq!(
        fs.lookup_parent(ROOT_INO, b"/s"),
        Ok((ROOT_INO, b"s".to_vec())),
        "last symlink untouched"
    );
    assert_eq!(fs.lookup_parent(ROOT_INO, b"/x/y"), Err(Errno::ENOENT));
    assert_eq!(fs.lookup_parent(ROOT_INO, b""), Err(Errno::ENOENT));
    let long = [b'n'; 256];
    assert_eq!(fs.lookup_parent(ROOT_INO, &long), Err(Errno::ENAMETOOLONG));
}

#[test]
fn path_of_walks_back_to_the_root() {
    let mut fs = fs();
    let c = mkdirs(&mut fs, b"/a/b/c");
    assert_eq!(fs.path_of(c).unwrap(), b"/a/b/c");
    assert_eq!(fs.path_of(ROOT_INO).unwrap(), b"/");
    let f = file(&mut fs, b"/a/f", b"");
    assert_eq!(fs.path_of(f), Err(Errno::ENOTDIR));
    let b = resolve(&fs, b"/a/b").unwrap();
    fs.rename(b, b"c", ROOT_INO, b"moved").unwrap();
    assert_eq!(fs.path_of(c).unwrap(), b"/moved");
    fs.retain(c).unwrap();
    fs.rmdir(ROOT_INO, b"moved").unwrap();
    assert_eq!(fs.path_of(c), Err(Errno::ENOENT), "getcwd of a removed cwd");
}

#[test]
fn walk_stops_at_a_mount_point_through_symlinks() {
    use vfs::Walked;
    let mut fs = fs();
    let proc_dir = mkdirs(&mut fs, b"/proc");
    let dev = mkdirs(&mut fs, b"/dev");
    fs.symlink(dev, b"fd", b"/proc/self/fd").unwrap();
    fs.symlink(dev, b"stdin", b"fd/0").unwrap();
    let disk = mkdirs(&mut fs, b"/mnt/disk");
    let m: &[vfs::Ino] = &[proc_dir, disk];
    let mount = |p: &[u8]| {
        Ok(Walked::Mount {
            at: proc_dir,
            rest: p.to_vec(),
        })
    };
    assert_eq!(
        fs.walk(ROOT_INO, b"/proc/self/fd/3", true, m),
        mount(b"/self/fd/3")
    );
    assert_eq!(
        fs.walk(ROOT_INO, b"/dev/fd/63", true, m),
        mount(b"/self/fd/63")
    );
    assert_eq!(
        fs.walk(ROOT_INO, b"/dev/stdin", true, m),
        mount(b"/self/fd/0")
    );
    assert_eq!(
        fs.walk(ROOT_INO, b"/dev/fd/", false, m),
        mount(b"/self/fd/")
    );
    assert_eq!(fs.walk(ROOT_INO, b"/proc", true, m), mount(b""));
    assert_eq!(fs.walk(dev, b"../proc/1", true, m), mount(b"/1"));
    // Each mount point reports itself.
    assert_eq!(
        fs.walk(ROOT_INO, b"/mnt/disk/a/b", true, m),
        Ok(Walked::Mount {
            at: disk,
            rest: b"/a/b".to_vec()
        })
    );
    // The last symlink unfollowed: the link itself, not /proc.
    let stdin = fs.walk(ROOT_INO, b"/dev/stdin", false, m).unwrap();
    assert!(matches!(stdin, Walked::Ino(_)));
    assert_eq!(fs.walk(ROOT_INO, b"/dev", true, m), Ok(Walked::Ino(dev)));
    // Without a mount point the same path is just missing.
    assert_eq!(fs.lookup(ROOT_INO, b"/dev/fd/63", true), Err(Errno::ENOENT));
}
