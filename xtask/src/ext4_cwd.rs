//! The cwd inside an ext4 mount: busybox's `cd` into nested directories
//! of the disk, `ls`/`cat` by relative names, `pwd -P` (getcwd) and `cd
//! ..` up through the mount point into the tmpfs, umount EBUSY while a
//! shell works there; `rsetest cwd` on the mount (fchdir, openat from a
//! directory descriptor, relative paths out to /tmp and /proc, a removed
//! cwd); programs on the disk run (an ELF by a relative path, a `#!`
//! script); then umount and a clean `e2fsck -fn` (the removed cwd was
//! freed).

use crate::ext4_programs::{fsck_clean, rsetest_only, with_empty_image};
use crate::scenarios::{exec_opts, expect_lines};
use crate::RunOpts;

const SCRIPT: &str = r#"
mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d && echo mounted
mkdir -p /mnt/d/sub/deeper; echo hello > /mnt/d/sub/f
cd /mnt/d/sub && echo "pwd $(pwd -P)"
echo "ls $(ls | tr '\n' ' ')"
echo "cat $(cat f)"
cp /bin/busybox busybox && ./busybox echo exec-from-disk
printf '#!/bin/sh\necho script-from-disk $0\n' > s && chmod +x s && ./s
cd deeper && echo "pwd $(pwd -P)"
cd -P ../.. && echo "pwd $(pwd -P)"
cd -P .. && echo "pwd $(pwd -P) ls $(ls)"
cd d/sub && echo "busy $(umount /mnt/d 2>&1 | grep -ci busy)"
rsetest cwd /mnt/d; echo "cwd status $?"
cd /; umount /mnt/d && echo umounted
"#;

pub fn ext4_cwd_in_mount() -> Result<(), String> {
    with_empty_image("ext4-cwd", "32M", run)
}

fn run(img: &std::path::Path) -> Result<(), String> {
    let adds = rsetest_only()?;
    let opts = RunOpts {
        exec: Some(SCRIPT.into()),
        adds,
        disks: vec![img.to_path_buf()],
        ..Default::default()
    };
    let (c, _) = exec_opts(&opts, "ext4-cwd")?;
    expect_lines(
        &c,
        &[
            "mounted".to_string(),
            "pwd /mnt/d/sub".into(),
            "ls deeper f".into(),
            "cat hello".into(),
            "exec-from-disk".into(),
            "script-from-disk ./s".into(),
            "pwd /mnt/d/sub/deeper".into(),
            "pwd /mnt/d".into(),
            "pwd /mnt ls d".into(),
            "busy 1".into(),
            "PASS cwd".into(),
            "cwd status 0".into(),
            "umounted".into(),
        ],
    )?;
    fsck_clean(img)
}
