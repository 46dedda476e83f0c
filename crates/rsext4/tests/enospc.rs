//! A disk filled until NoSpace, then the file removed: every block goes
//! back (RSE OS patch 7, crates/rsext4/PATCHES.md).

mod common;

use common::{e2fsck_clean, make_image, tool_available, FileBlockDevice};
use rsext4::*;

#[test]
fn filling_the_disk_then_deleting_leaks_nothing() {
    assert!(
        tool_available("mkfs.ext4") && tool_available("e2fsck"),
        "mkfs.ext4 and e2fsck are needed (e2fsprogs)"
    );
    for chunk in [64 << 10, 1 << 20] {
        let image = make_image(
            "rsext4-enospc",
            "64M",
            "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
        );
        let mut device = Jbd2Dev::initial_jbd2dev(0, FileBlockDevice::open(&image), true);
        let mut fs = Ext4FileSystem::mount(&mut device).expect("mount");
        mkfile(&mut device, &mut fs, "/fill", None, None).expect("create");
        let data = vec![0x5au8; chunk];
        let mut off = 0u64;
        let err = loop {
            match write_file(&mut device, &mut fs, "/fill", off, &data) {
                Ok(()) => off += chunk as u64,
                Err(e) => break e,
            }
            assert!(off < 1 << 30, "a 64 MiB disk took 1 GiB");
        };
        assert_eq!(err.kind(), error::Ext4ErrorKind::NoSpace, "{err:?}");
        delete_file(&mut fs, &mut device, "/fill").expect("delete");
        umount(fs, &mut device).expect("umount");
        drop(device);
        e2fsck_clean(&image);
        let _ = std::fs::remove_file(&image);
    }
}
